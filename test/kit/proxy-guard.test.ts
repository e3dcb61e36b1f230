/**
 * The guard behind a proxy the kernel cannot see through: a blackhole toxic keeps ACKing at the TCP level
 * while nothing comes back. Only a probe on a separate connection can tell; a latency toxic (slow, alive)
 * must not be mistaken for it.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ConnectionEvictedError, type EvictionEvent, Pool } from '../../src/index'
import { faultProxy } from '../../src/testing/proxy'
import { useCluster } from '../helpers'

const cluster = useCluster({ primaryHost: '127.0.0.84' })

describe('guard behind a userspace fault proxy', () => {
  it('latency 300 ms: slow but alive, nothing evicted', async () => {
    const c = cluster.get()
    const proxy = await faultProxy({ host: c.primary.host, port: c.port })
    const pool = new Pool({ ...c.config, host: proxy.host, port: proxy.port, guard: { probeAfterMs: 1000, probeIntervalMs: 1000 } })
    const evictions: EvictionEvent[] = []
    pool.guard.on('evict', (e) => evictions.push(e))
    await pool.query('SELECT 1')
    proxy.add('latency', { latencyMs: 300 })
    const { rows } = await pool.query('SELECT pg_sleep(1.2), 1 AS ok')
    assert.equal(rows[0].ok, 1)
    assert.deepEqual(evictions, [])
    await pool.end()
    await proxy.stop()
  })

  it('blackhole: the kernel sees a healthy socket; the probe does not, and the query is evicted', async () => {
    const c = cluster.get()
    const proxy = await faultProxy({ host: c.primary.host, port: c.port })
    const pool = new Pool({ ...c.config, host: proxy.host, port: proxy.port })
    await pool.query('SELECT 1')
    proxy.add('blackhole', { direction: 'downstream' })
    const started = Date.now()
    const err = await pool.query('SELECT 1').then(() => undefined, (e: Error) => e)
    const elapsed = Date.now() - started
    assert.ok(err instanceof ConnectionEvictedError, String(err))
    assert.equal(err.reason, 'host-unresponsive')
    const { probeAfterMs, probeTimeoutMs } = pool.guard.options
    assert.ok(elapsed < probeAfterMs + probeTimeoutMs + 1000, `${elapsed} ms`)
    proxy.clear()
    assert.equal((await pool.query('SELECT 2 AS n')).rows[0].n, 2, 'toxic removed: the pool recovers by itself')
    await pool.end()
    await proxy.stop()
  })
})
