/**
 * Replication links as the host monitors read them on a real primary + standby, and how they degrade
 * without grants: a superuser sees both links streaming with their details; a plain role sees only
 * that the walreceiver / walsenders exist (readable: false, "needs pg_monitor"); a server where the view is
 * revoked answers "unavailable: permission denied", and the role poll goes on regardless.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Pool } from '../../src/index'
import { REPLICATION } from '../../src/telemetry/semconv'
import { until, useCluster } from '../helpers'
import { meterProvider } from '../metrics'

const cluster = useCluster({ standby: true, primaryHost: '127.0.20.11', standbyHost: '127.0.20.12' })

function poolAs(user: string, password: string, guard = {}): Pool {
  const c = cluster.get()
  return new Pool({ ...c.config, host: c.hosts, user, password, max: 2, guard })
}

describe('replication links (real primary + standby)', () => {
  it('a superuser monitor: both links streaming, with upstream, standby count, replay lag and detail; the gauges; no event', async () => {
    const c = cluster.get()
    const otel = meterProvider()
    const pool = poolAs(c.user, c.password, { meterProvider: otel.provider })
    const events: unknown[] = []
    pool.guard.on('replication', (e) => events.push(e))
    try {
      const rep = (host: string) => pool.guard.topology().hosts.find((h) => h.spec.host === host)!.replication
      await until(() => rep(c.primary.host).state === 'streaming' && rep(c.standby!.host).state === 'streaming', 'both streaming')
      const s = rep(c.standby!.host)
      assert.equal(s.readable, true)
      assert.equal(s.upstream, `${c.primary.host}:${c.port}`)
      assert.match(s.detail!, /^walreceiver streaming from .*, last message \d+(\.\d)? s ago$/)
      const p = rep(c.primary.host)
      assert.equal(p.standbys, 1)
      assert.equal(p.readable, true)
      // replay_lag is measured while WAL flows (and NULL again once the standby has caught up and idles)
      await until(async () => {
        await pool.query('SELECT txid_current()')
        return rep(c.primary.host).lagSeconds !== null
      }, 'a replay lag measured', 10_000, 100)
      assert.ok(rep(c.primary.host).lagSeconds! < 5, `lag ${rep(c.primary.host).lagSeconds} s`)
      const m = await otel.collect()
      const at = (host: string, state: string) => ({ 'server.address': host, 'pg_pool_guard.replication.state': state })
      assert.equal(m.value(REPLICATION.state.name, at(c.standby!.host, 'ok')), 1)
      assert.equal(m.value(REPLICATION.state.name, at(c.standby!.host, 'lost')), 0)
      assert.equal(m.value(REPLICATION.state.name, at(c.primary.host, 'ok')), 1)
      assert.equal(typeof m.value(REPLICATION.lag.name, { 'server.address': c.primary.host }), 'number')
      assert.deepEqual(events, [])
    } finally {
      await pool.end()
    }
  })

  it('a role without pg_monitor: presence only, readable false with why; the role poll is unaffected', async () => {
    const c = cluster.get()
    await c.primary.query("CREATE ROLE plain LOGIN PASSWORD 'plain-pw'")
    await c.caughtUp()
    const pool = poolAs('plain', 'plain-pw')
    try {
      const host = (h: string) => pool.guard.topology().hosts.find((x) => x.spec.host === h)!
      await until(() => host(c.primary.host).replication.detail !== null && host(c.standby!.host).replication.detail !== null, 'both read')
      for (const h of [c.primary.host, c.standby!.host]) {
        const r = host(h).replication
        assert.equal(r.state, 'streaming', `${h}: ${r.detail}`)
        assert.equal(r.readable, false)
        assert.match(r.why!, /not visible \(needs pg_monitor\)/)
      }
      assert.equal(host(c.primary.host).role?.inHotStandby, false)
      assert.equal(host(c.standby!.host).role?.inHotStandby, true)
      assert.equal((await pool.query('SELECT 1 AS one')).rows[0].one, 1)
    } finally {
      await pool.end()
    }
  })

  it('the view revoked: "unavailable: ..." and state unknown, the role and timeline still polled', async () => {
    const c = cluster.get()
    await c.primary.query('REVOKE SELECT ON pg_stat_replication FROM PUBLIC')
    const pool = poolAs('plain', 'plain-pw')
    try {
      const host = () => pool.guard.topology().hosts.find((x) => x.spec.host === c.primary.host)!
      await until(() => host().replication.why?.startsWith('unavailable') === true, 'the primary says unavailable')
      assert.equal(host().replication.state, 'unknown')
      assert.match(host().replication.why!, /permission denied.*\(42501\)/)
      assert.equal(host().reachable, true)
      assert.equal(host().role?.inHotStandby, false)
      assert.equal(host().timeline, 1)
    } finally {
      await pool.end()
      await c.primary.query('GRANT SELECT ON pg_stat_replication TO PUBLIC')
    }
  })
})
