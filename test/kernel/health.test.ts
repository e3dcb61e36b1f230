/**
 * Host health on a real lossy link (issue 13): 18 % of the packets to the host dropped by iptables while 8
 * workers query through the pool. The host turns `degraded` within 5 s, with the evidence; nothing is
 * evicted and no query fails; it is healthy again within 10 s of the loss ending. A busy healthy host never
 * turns degraded.
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { type EvictionEvent, type HealthTransition, Pool } from '../../src/index'
import { type KernelFault, loss } from '../../src/testing/kernel-faults'
import { kernelSkip, until, useCluster } from '../helpers'
import { queryLoop } from '../helpers-load'

const skip = kernelSkip('test/kernel/health.test.ts')
const cluster = useCluster({ primaryHost: '127.0.12.41' })
let fault: KernelFault | undefined
after(async () => {
  await fault?.remove()
})

describe('host health (real packet loss)', { skip }, () => {
  it('18 % loss: degraded within 5 s with the evidence, no eviction, no failed query; healthy again within 10 s', async () => {
    const c = cluster.get()
    const pool = new Pool({ ...c.config, max: 8 })
    const transitions: HealthTransition[] = []
    pool.guard.on('health', (t) => transitions.push(t))
    const evictions: EvictionEvent[] = []
    pool.guard.on('evict', (e) => evictions.push(e))
    const load = queryLoop(() => pool.query('SELECT 1'))
    await new Promise((r) => setTimeout(r, 4000)) // healthy and busy: a baseline, and no false alarm
    assert.equal(transitions.length, 0, `a busy healthy host is not degraded: ${transitions.map((t) => t.evidence).join('; ')}`)
    fault = await loss(c.primary.host, 0.18, { port: c.port, direction: 'to' })
    const lossAt = Date.now()
    await until(() => transitions.some((t) => t.to === 'degraded'), 'the host turns degraded', 8000)
    const degraded = transitions.find((t) => t.to === 'degraded')!
    await fault.remove()
    fault = undefined
    const healedAt = Date.now()
    await until(() => transitions.some((t) => t.to === 'healthy'), 'the host is healthy again', 15_000)
    const healthy = transitions.find((t) => t.to === 'healthy')!
    await load.stop()
    console.log(`# degraded ${degraded.at - lossAt} ms after the loss began (${degraded.evidence}); healthy ${healthy.at - healedAt} ms after it ended`)
    assert.ok(degraded.at - lossAt < 5000, `${degraded.at - lossAt} ms`)
    assert.match(degraded.evidence, /retransmitted/)
    assert.ok(healthy.at - healedAt < 10_000, `${healthy.at - healedAt} ms`)
    assert.deepEqual(evictions.map((e) => `${e.reason}: ${e.evidence}`), [])
    assert.deepEqual(load.outcomes.filter((o) => !o.ok).map((o) => o.code), [])
    await pool.end()
  })
})
