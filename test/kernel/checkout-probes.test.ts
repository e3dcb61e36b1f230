/**
 * The checkout check on a socket with unanswered keepalive probes (root: iptables). An idle pooled client
 * whose host stopped answering (a blackhole) has two probes out in the kernel; the guard's loop is off
 * (checkIntervalMs 0), so only the checkout check can catch it. The blackhole is lifted just before the
 * checkout (the next probe is 2 s away, so the kernel still counts two unanswered): the caller's query
 * runs on a new connection, and the evict event names the check.
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { type EvictionEvent, Pool } from '../../src/index'
import { linuxKernel } from '../../src/kernel/linux'
import { blackhole, type KernelFault } from '../../src/testing/kernel-faults'
import { kernelSkip, useCluster } from '../helpers'

const skip = kernelSkip('test/kernel/checkout-probes.test.ts')
const cluster = useCluster({ primaryHost: '127.0.24.40' })
let fault: KernelFault | undefined
after(async () => {
  await fault?.remove()
})

describe('checkout check: unanswered keepalive probes', { skip }, () => {
  it('an idle client with two probes unanswered is never handed out; the query runs on a new connection', async () => {
    const c = cluster.get()
    const pool = new Pool({ ...c.config, max: 1, guard: { checkIntervalMs: 0, keepAliveIdleMs: 1000, keepAliveIntervalMs: 2000 } })
    pool.on('error', () => {})
    const evictions: EvictionEvent[] = []
    pool.guard.on('evict', (e) => evictions.push(e))
    const { rows } = await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
    const doomed = rows[0].pid
    const fd = pool.guard.snapshot()[0].fd!
    fault = await blackhole(c.primary.host, { port: c.port })
    // Probes at ~1 s and ~3 s of silence; the kernel's count is the fact (no event for it).
    const deadline = Date.now() + 15_000
    while ((linuxKernel.sample(fd)?.probes ?? 0) < 2) {
      assert.ok(Date.now() < deadline, 'two keepalive probes went out unanswered')
      await new Promise((r) => setTimeout(r, 100))
    }
    await fault.remove()
    fault = undefined
    assert.ok((linuxKernel.sample(fd)?.probes ?? 0) >= 2, 'still two unanswered at the checkout')
    const after = await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
    assert.notEqual(after.rows[0].pid, doomed, 'served by a new connection')
    assert.equal(evictions.length, 1, JSON.stringify(evictions))
    assert.equal(evictions[0].reason, 'checkout-distrusted')
    assert.match(evictions[0].evidence, /keepalive probes? unanswered/)
    assert.equal(evictions[0].backendPid, doomed)
    await pool.end()
  })
})
