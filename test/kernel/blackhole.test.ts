/**
 * A real kernel fault: iptables DROP on a 127.0.0.x PostgreSQL, both directions, tagged and always
 * removed. In-flight queries must reject with the coded error within 2 s, idle zombies must be evicted
 * within 2 s of their first keepalive probe, and the pool must recover by itself once the block lifts.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ConnectionEvictedError, ErrorCodes, type EvictionEvent, Pool } from '../../src/index'
import { GUARD } from '../../src/telemetry/semconv'
import { events, kernelSkip, useBlackholedCluster } from '../helpers'
import { meterProvider } from '../metrics'

const skip = kernelSkip('test/kernel/blackhole.test.ts')
const { cluster, cut } = useBlackholedCluster({ primaryHost: '127.0.0.21' })

describe('blackholed PostgreSQL (iptables DROP)', { skip }, () => {
  it('in-flight queries reject with PGG_CONNECTION_EVICTED within 2 s: four at once, and a lone one', async () => {
    for (const inFlight of [4, 1]) {
      const otel = meterProvider()
      const pool = new Pool({ ...cluster.get().config, max: 6, guard: { meterProvider: otel.provider, poolName: 'bh' } })
      const evictions: EvictionEvent[] = []
      pool.guard.on('evict', (e) => evictions.push(e))
      await Promise.all(Array.from({ length: 6 }, () => pool.query('SELECT 1'))) // 6 sockets, some will idle
      const fault = await cut()
      const started = Date.now()
      const results = await Promise.allSettled(Array.from({ length: inFlight }, () => pool.query('SELECT 1')))
      const elapsed = Date.now() - started
      await fault.remove()
      assert.ok(elapsed < 2000, `${inFlight} in flight: settled after ${elapsed} ms`)
      for (const r of results) {
        assert.equal(r.status, 'rejected')
        const err = (r as PromiseRejectedResult).reason as ConnectionEvictedError
        assert.ok(err instanceof ConnectionEvictedError, String(err))
        assert.equal(err.code, ErrorCodes.CONNECTION_EVICTED)
        assert.match(err.message, new RegExp(`connection to 127\\.0\\.0\\.21:${cluster.get().port} evicted \\(zombie-unacked\\): \\d retransmits, no ACK for`))
      }
      // The whole host was condemned at once: idle sockets too, so none can be handed out later.
      assert.equal(evictions.length, 6, evictions.map((e) => e.reason).join())
      assert.deepEqual(new Set(evictions.map((e) => e.reason)), new Set(['zombie-unacked', 'host-dead']))
      assert.equal(pool.idleCount, 0)
      // The same story in metrics.
      const m = await otel.collect()
      const by = (reason: string, inUse: boolean) => m.value(GUARD.evictions.name, { 'db.client.connection.pool.name': 'bh', 'pg_pool_guard.reason': reason, 'pg_pool_guard.in_use': inUse }) ?? 0
      assert.equal(by('zombie-unacked', true), inFlight)
      assert.equal(by('host-dead', false), 6 - inFlight)
      assert.equal(m.value(GUARD.detectionTime.name, { 'pg_pool_guard.reason': 'zombie-unacked' }), inFlight)
      assert.ok(m.sum(GUARD.retransmits.name) >= 2 * inFlight, 'retransmissions observed')
      // After the block lifts, new queries just work.
      assert.equal((await pool.query('SELECT 7 AS n')).rows[0].n, 7)
      await pool.end()
    }
  })

  it('idle zombies are evicted within 2 s of their first keepalive probe', async () => {
    const keepAliveIdleMs = 2000
    const pool = new Pool({ ...cluster.get().config, max: 3, guard: { keepAliveIdleMs } })
    await Promise.all(Array.from({ length: 3 }, () => pool.query('SELECT 1')))
    const lastTraffic = Date.now()
    const removed = events(pool, 'remove', 3, 15_000)
    const evictions: EvictionEvent[] = []
    pool.guard.on('evict', (e) => evictions.push(e))
    await cut()
    await removed
    const firstProbe = lastTraffic + keepAliveIdleMs
    for (const e of evictions) {
      assert.equal(e.inUse, false)
      assert.ok(e.at - firstProbe < 2000, `evicted ${e.at - firstProbe} ms after the first probe (${e.reason}: ${e.evidence})`)
      assert.ok(e.at - e.firstEvidenceAt < 2000, `the guard's own estimate: ${e.at - e.firstEvidenceAt} ms`)
    }
    assert.equal(evictions.filter((e) => e.reason === 'zombie-keepalive').length >= 1, true)
    assert.match(evictions[0].evidence, /keepalive probes unanswered/)
    assert.equal(pool.totalCount, 0)
    await pool.end()
  })
})
