/**
 * Behind a pooler: a real PgBouncer in transaction mode (default_pool_size 5) in front of a real primary.
 * The guard must see that a pooler answers (the BackendKeyData pid is PgBouncer's, not the backend's) and
 * then judge only the hop it owns: no server-identity verdicts (a transaction may run on any server
 * connection), no promotion watch holding one of PgBouncer's server connections, probes that accept the
 * pooler's login as proof of life. A server restarted behind PgBouncer under load costs the guarded pool no
 * more than it costs pg.Pool through the same PgBouncer: both wait for PgBouncer to log in again.
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import pg from 'pg'
import { type EvictionEvent, Pool } from '../../src/index'
import { writeLoad } from '../../src/testing/workload'
import { type Bouncer, pgbouncerMissing, startPgBouncer } from '../pgbouncer'
import { until, useCluster } from '../helpers'

const skip = pgbouncerMissing('test/pg/pgbouncer.test.ts')
const cluster = useCluster({ primaryHost: '127.0.65.2' })
const bouncers: Bouncer[] = []
after(async () => {
  for (const b of bouncers) await b.stop()
})

describe('behind PgBouncer (transaction mode, default_pool_size 5)', { skip }, () => {
  it('8 workers, target_session_attrs=read-write: no error, no eviction, and no guard session holds a server connection past its transaction', async () => {
    const c = cluster.get()
    const bouncer = await startPgBouncer(c, '127.0.65.9')
    bouncers.push(bouncer)
    const pool = new Pool({ ...c.config, host: bouncer.host, port: bouncer.port, max: 8, guard: { targetSessionAttrs: 'read-write' } })
    const errors: Error[] = []
    pool.on('error', (e) => errors.push(e))
    const evictions: EvictionEvent[] = []
    pool.guard.on('evict', (e) => evictions.push(e))
    // What the server's backends do meanwhile: no backend of the guard's own sessions (monitor, watch,
    // address check, probe) may sit in a transaction or run for more than a moment.
    const held: string[] = []
    let sampling = true
    const sampler = (async () => {
      while (sampling) {
        const { rows } = await c.primary.query<{ app: string; state: string; ms: number; query: string }>(
          `SELECT application_name AS app, state, (EXTRACT(EPOCH FROM clock_timestamp() - COALESCE(xact_start, query_start)) * 1000)::float8 AS ms, left(query, 40) AS query
             FROM pg_stat_activity WHERE application_name LIKE 'pg-pool-guard%' AND (state LIKE 'idle in transaction%' OR (state = 'active' AND clock_timestamp() - query_start > interval '500 ms') OR query LIKE 'DO %')`
        )
        for (const r of rows) held.push(`${r.app}: ${r.state} ${Math.round(r.ms)} ms: ${r.query}`)
        await new Promise((r) => setTimeout(r, 50))
      }
    })()
    let queries = 0
    const deadline = Date.now() + 6000
    await Promise.all(
      Array.from({ length: 8 }, async (_, w) => {
        while (Date.now() < deadline) {
          const { rows } = await pool.query(w % 2 ? 'SELECT 1 AS one' : 'SELECT pg_backend_pid() AS pid')
          assert.ok(rows.length === 1)
          queries++
        }
      })
    )
    sampling = false
    await sampler
    const rows = pool.guard.snapshot()
    const host = pool.guard.topology().hosts[0]
    console.log(`# PgBouncer, 8 workers for 6 s: ${queries} queries, ${errors.length} errors, ${evictions.length} evictions; sessions marked pooler: ${rows.filter((r) => r.pooler).length}/${rows.length}; backend pids seen by pg: ${[...new Set(rows.map((r) => r.backendPid))].slice(0, 3).join(', ')}...`)
    assert.equal(errors.length, 0)
    assert.deepEqual(evictions, [])
    assert.ok(rows.length > 0 && rows.every((r) => r.pooler === true), 'every session knows a pooler answers in front')
    assert.equal(host.pooler, true)
    assert.deepEqual(held, [], 'no guard session holds a server connection')
    await pool.end()
    await bouncer.stop()
  })

  it('the server restarted behind it under load: every query settles, and service is back no later than pg.Pool\'s through the same PgBouncer', async () => {
    const c = cluster.get()
    // server_login_retry shortened from 15 s so the test is short; the wait is PgBouncer's either way.
    const bouncer = await startPgBouncer(c, '127.0.65.10', { server_login_retry: 3 })
    bouncers.push(bouncer)
    const config = { ...c.config, host: bouncer.host, port: bouncer.port, max: 8 }
    const guarded = new Pool({ ...config, guard: { targetSessionAttrs: 'read-write' } })
    const plain = new pg.Pool(config)
    for (const p of [guarded, plain]) p.on('error', () => {})
    const evictions: EvictionEvent[] = []
    guarded.guard.on('evict', (e) => evictions.push(e))
    const g = await writeLoad(guarded, { writers: 8, table: 'bouncer_writes' })
    const p = await writeLoad(plain, { writers: 8, table: 'bouncer_writes_plain' })
    await g.firstAckOn(c.primary.host)
    await p.firstAckOn(c.primary.host)
    await until(() => guarded.guard.snapshot().some((r) => r.pooler === true), 'the guard knows a pooler answers')
    const stopped = Date.now()
    await c.restart(c.primary)
    const restarted = Date.now()
    const [gBack, pBack] = await Promise.all([g.firstAckOn(c.primary.host, restarted, 30_000), p.firstAckOn(c.primary.host, restarted, 30_000)])
    // Every writer's query settles: none is still waiting a moment after service is back.
    await until(() => g.hung(2000) === 0 && p.hung(2000) === 0, 'no write is left waiting', 10_000)
    const [gs, ps] = await Promise.all([g.stop(), p.stop()])
    console.log(
      `# server restarted behind PgBouncer (restart took ${restarted - stopped} ms): service back after ${gBack.at - restarted} ms (guard) and ${pBack.at - restarted} ms (pg.Pool); ` +
        `failed writes: guard ${JSON.stringify(gs.failureCodes)}, pg.Pool ${JSON.stringify(ps.failureCodes)}; guard evictions ${JSON.stringify(evictions.reduce<Record<string, number>>((m, e) => ({ ...m, [e.reason]: (m[e.reason] ?? 0) + 1 }), {}))}`
    )
    // One writer's loop of slack: both pools wait on the same PgBouncer.
    assert.ok(gBack.at <= pBack.at + 250, `guard back ${gBack.at - restarted} ms after the restart, pg.Pool ${pBack.at - restarted} ms`)
    assert.ok(evictions.every((e) => e.reason === 'server-going-away' || e.reason === 'fatal-error'), 'only the server\'s own word retires a session')
    assert.ok(guarded.guard.topology().hosts.every((h) => h.down === null), 'the pooler is never marked down')
    await guarded.end()
    await plain.end()
    await bouncer.stop()
  })
})
