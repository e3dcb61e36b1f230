/**
 * What the kernel cannot see: a frozen server process (SIGSTOP) keeps ACKing from the kernel, so a query
 * waits on a healthy-looking socket. The guard probes the host on a separate monitoring connection after
 * probeAfterMs; the probe gets no answer, and the waiting query is evicted as host-unresponsive. A slow
 * but healthy query on the same kind of socket passes its probe and completes.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ConnectionEvictedError, type EvictionEvent, Pool, type ProbeResult } from '../../src/index'
import { useCluster } from '../helpers'

const cluster = useCluster({ primaryHost: '127.0.0.23' })
// cluster.stop() thaws a frozen server before stopping it, also when a test fails midway.

describe('host-unresponsive: probes see what the kernel cannot', () => {
  it('a slow healthy query passes its probe and completes', async () => {
    const pool = new Pool({ ...cluster.get().config, guard: { probeAfterMs: 1000, probeIntervalMs: 1000 } })
    const probes: ProbeResult[] = []
    pool.guard.on('probe', (p) => probes.push(p))
    const evictions: EvictionEvent[] = []
    pool.guard.on('evict', (e) => evictions.push(e))
    const { rows } = await pool.query('SELECT pg_sleep(3.5), 1 AS done')
    assert.equal(rows[0].done, 1)
    assert.deepEqual(evictions, [])
    assert.ok(probes.length >= 1 && probes.every((p) => p.alive), JSON.stringify(probes))
    await pool.end()
  })

  it('a frozen server: the waiting query is evicted after a failed probe', async () => {
    const c = cluster.get()
    const pool = new Pool({ ...c.config, max: 2 })
    await pool.query('SELECT 1')
    c.primary.freeze()
    const started = Date.now()
    const err = await pool.query('SELECT 1').then(() => undefined, (e: Error) => e)
    const elapsed = Date.now() - started
    c.primary.thaw()
    assert.ok(err instanceof ConnectionEvictedError, String(err))
    assert.equal(err.reason, 'host-unresponsive')
    assert.match(err.message, /probe of 127\.0\.0\.23:\d+ failed after 1\.5 s \(no answer within 1500 ms\), a query waited/)
    const { probeAfterMs, probeTimeoutMs, checkIntervalMs } = pool.guard.options
    assert.ok(elapsed < probeAfterMs + probeTimeoutMs + 2 * checkIntervalMs + 500, `evicted after ${elapsed} ms`)
    assert.equal((await pool.query('SELECT 2 AS n')).rows[0].n, 2, 'thawed: the pool recovers by itself')
    await pool.end()
  })
})
