/**
 * Never kill a slow-but-healthy query: a 12 s pg_sleep on a link that ACKs completes normally, while in the
 * same process a second pool's socket to a blackholed host is evicted.
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { ConnectionEvictedError, type EvictionEvent, Pool } from '../../src/index'
import { blackhole, type KernelFault } from '../../src/testing/kernel-faults'
import { kernelSkip, useCluster } from '../helpers'

const skip = kernelSkip('test/kernel/slow-query.test.ts')
const cluster = useCluster({ standby: true, primaryHost: '127.0.0.25', standbyHost: '127.0.0.26' })
let fault: KernelFault | undefined
after(async () => {
  await fault?.remove()
})

describe('slow healthy query vs blackholed host', { skip }, () => {
  it('pg_sleep(12) completes while another pool\'s socket to a blackholed host is evicted', async () => {
    const c = cluster.get()
    const healthy = new Pool({ ...c.primary.config, max: 2 })
    const doomed = new Pool({ ...c.standby!.config, max: 2 })
    const healthyEvictions: EvictionEvent[] = []
    healthy.guard.on('evict', (e) => healthyEvictions.push(e))
    await doomed.query('SELECT 1')

    const started = Date.now()
    const slow = healthy.query('SELECT pg_sleep(12), 42 AS answer')
    fault = await blackhole(c.standby!.host, { port: c.port })
    const err = await doomed.query('SELECT 1').then(() => undefined, (e: Error) => e)
    assert.ok(err instanceof ConnectionEvictedError, String(err))
    assert.ok(Date.now() - started < 3000, `doomed query evicted after ${Date.now() - started} ms`)

    const { rows } = await slow
    assert.equal(rows[0].answer, 42)
    assert.ok(Date.now() - started >= 12_000)
    assert.deepEqual(healthyEvictions, [], 'the slow query was never touched')
    await fault.remove()
    await healthy.end()
    await doomed.end()
  })
})
