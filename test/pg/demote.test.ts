/**
 * Errors that prove a socket is in the wrong place, on a real primary + standby.
 *
 * A server cannot be demoted under a live session: restarting it as a standby ends every session (57P01).
 * The 25006 case is a planned switchover that first makes the old primary read-only
 * (default_transaction_read_only, reloaded) so that no write lands there once the new primary is chosen,
 * then promotes the standby and restarts the old primary as its standby. The sessions the pool holds on
 * the old primary stay open through the first step; their next write is answered 25006. The host monitors
 * poll once a minute here, so what the guard learns, it learns from the 25006.
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import pg from 'pg'
import { type EvictionEvent, type HostState, Pool } from '../../src/index'
import { type Cluster, startCluster } from '../../src/testing/cluster'
import { nextEvent, until } from '../helpers'

const clusters: Cluster[] = []
after(async () => {
  for (const c of clusters) await c.stop()
})

interface Outcome {
  client: number
  ok: boolean
  host?: string
  err?: Error & { code?: string }
  at: number
}

describe('server errors that prove a socket is in the wrong place', () => {
  it('old primary demoted: each pooled client gets at most one 25006, then writes go to the new primary', async () => {
    const c = await startCluster({ standby: true, primaryHost: '127.0.23.2', standbyHost: '127.0.23.3' })
    clusters.push(c)
    const [a, b] = c.servers
    await c.primary.query('CREATE TABLE demote_writes (id serial PRIMARY KEY, at timestamptz DEFAULT now())')
    await c.caughtUp()
    const pool = new Pool({
      ...c.config, host: c.hosts, max: 4,
      // topologyEvictInUse 'release': a write already sent to the old primary gets the server's answer, not ours.
      guard: { targetSessionAttrs: 'read-write', topologyIntervalMs: 60_000, topologyEvictInUse: 'release' },
    })
    pool.on('error', () => {})
    const evictions: EvictionEvent[] = []
    pool.guard.on('evict', (e) => evictions.push(e))

    // Four idle clients on the old primary.
    const held = await Promise.all([1, 2, 3, 4].map(() => pool.connect()))
    for (const cl of held) cl.release()
    assert.deepEqual(pool.guard.snapshot().map((r) => r.configuredHost), [a.host, a.host, a.host, a.host])

    // Step 1: the old primary turns read-only under the pool's open sessions.
    await a.query('ALTER SYSTEM SET default_transaction_read_only = on')
    await a.query('SELECT pg_reload_conf()')
    await until(async () => (await a.query('SHOW default_transaction_read_only')).rows[0].default_transaction_read_only === 'on', 'the reload took effect')

    const ids = new Map<pg.PoolClient, number>()
    const outcomes: Outcome[] = []
    let writing = true
    const writer = async (): Promise<void> => {
      while (writing) {
        let client: pg.PoolClient
        try {
          client = await pool.connect()
        } catch (err) {
          outcomes.push({ client: -1, ok: false, err: err as Error, at: Date.now() })
          await new Promise((r) => setTimeout(r, 20)) // no writable host yet
          continue
        }
        if (!ids.has(client)) ids.set(client, ids.size)
        try {
          const r = await client.query<{ host: string }>('INSERT INTO demote_writes DEFAULT VALUES RETURNING host(inet_server_addr()) AS host')
          outcomes.push({ client: ids.get(client)!, ok: true, host: r.rows[0].host, at: Date.now() })
        } catch (err) {
          outcomes.push({ client: ids.get(client)!, ok: false, err: err as Error, at: Date.now() })
        } finally {
          client.release()
        }
      }
    }
    const writers = [1, 2, 3, 4].map(() => writer())
    await until(() => outcomes.some((o) => o.err?.code === '25006'), 'a write was answered 25006')
    // The 25006 made the guard read the old primary's role now: new connections avoid it.
    await until(() => pool.guard.topology().hosts.find((h) => h.spec.host === a.host)?.role?.readOnly === true, 'the guard knows the old primary is read-only', 5000)

    // Step 2: the standby is promoted; writes go there.
    const promotedAt = Date.now()
    await c.promote(b)
    await until(() => outcomes.some((o) => o.ok && o.host === b.host && o.at >= promotedAt), 'a write succeeded on the new primary')
    // Step 3: the old primary restarts as a standby of the new one; the pool holds nothing there.
    const restartAt = Date.now()
    await c.restartAsStandby(a, b)
    const restarted = Date.now()
    await until(() => outcomes.filter((o) => o.at > restarted).length >= 20, '20 more writes')
    writing = false
    await Promise.all(writers)
    await pool.end()

    const refused = outcomes.filter((o) => o.err?.code === '25006')
    const perClient = new Map<number, number>()
    for (const o of refused) perClient.set(o.client, (perClient.get(o.client) ?? 0) + 1)
    const wrongRole = evictions.filter((e) => e.reason === 'wrong-role' && /25006/.test(e.evidence))
    console.log(
      `# demotion: ${refused.length} writes answered 25006 on ${perClient.size} clients; ${evictions.length} evictions ` +
        `(${evictions.map((e) => `${e.reason}: ${e.evidence}`).join('; ')}); ${outcomes.filter((o) => o.ok && o.host === b.host).length} writes on the new primary`
    )
    assert.ok(refused.length >= 1)
    assert.ok([...perClient.values()].every((n) => n === 1), `at most one 25006 per pooled client: ${JSON.stringify([...perClient])}`)
    for (const o of refused) {
      // The caller's error is pg's own, unchanged.
      assert.ok(o.err instanceof pg.DatabaseError, 'pg.DatabaseError')
      assert.match(o.err.message, /cannot execute INSERT in a read-only transaction/)
      assert.equal((o.err as pg.DatabaseError).severity, 'ERROR')
    }
    // The first 25006 evicts its client; the others may already be condemned by what that told the guard
    // (the session's read-only report, the host read again): one eviction per client either way.
    assert.ok(wrongRole.length >= 1, 'a wrong-role eviction names the SQLSTATE')
    assert.equal(new Set(evictions.map((e) => e.id)).size, evictions.length, 'one eviction per client')
    for (const e of wrongRole) {
      assert.equal(e.host, a.host)
      assert.equal(e.inUse, true)
      assert.match(e.evidence, /the server sent ERROR 25006 \(read_only_sql_transaction\) to a pool that needs a writer/)
    }
    // A new connection tried while the old primary was read-only may reach the standby before its promotion:
    // refused at login there (an eviction event too, of a session never handed out). Nothing else.
    const standbyRefused = (e: EvictionEvent): boolean => e.host === b.host && /^refused at login: .* is a standby \(in_hot_standby=on\), wanted target_session_attrs=read-write$/.test(e.evidence)
    assert.ok(evictions.every((e) => e.reason === 'wrong-role' && (e.host === a.host || standbyRefused(e))), `nothing else was evicted: ${JSON.stringify(evictions.map((e) => [e.host, e.evidence]))}`)
    // Only 25006 and "no writable host yet" (between the fence and the promotion) failed; nothing after the promotion was seen.
    const others = outcomes.filter((o) => !o.ok && o.err?.code !== '25006')
    assert.ok(others.every((o) => o.err?.code === 'PGG_NO_HOST_AVAILABLE' && o.at < promotedAt + 5000), JSON.stringify(others.map((o) => o.err?.message).slice(0, 3)))
    const afterRestart = outcomes.filter((o) => o.at >= restartAt)
    assert.ok(afterRestart.every((o) => o.ok && o.host === b.host), 'restarting the old primary as a standby touched no pooled client')
    assert.ok(outcomes.filter((o) => o.ok && o.host === a.host).every((o) => o.at < promotedAt), 'no write on the old primary after the promotion')
  })

  it('a fast shutdown (FATAL 57P01) retires the client in use, the caller gets the server\'s error, and the host is read again at once', async () => {
    const c = await startCluster({ primaryHost: '127.0.23.4' })
    clusters.push(c)
    const a = c.primary
    const pool = new Pool({ ...c.config, max: 2, guard: { targetSessionAttrs: 'read-write', topologyIntervalMs: 60_000 } })
    pool.on('error', () => {})
    await until(() => pool.guard.topology().hosts[0].reachable === true, 'the monitor read the host once')
    const client = await pool.connect()
    client.on('error', () => {})
    const running = client.query('SELECT pg_sleep(30)').then(() => null, (err: Error) => err)
    await until(async () => (await a.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)'")).rows[0].n === 1, 'the query runs')
    const evicted = nextEvent<[EvictionEvent]>(pool.guard, 'evict')
    const unreachable = new Promise<HostState>((resolve) => pool.guard.on('topology', (h) => h.reachable === false && resolve(h)))
    const stoppedAt = Date.now()
    const stop = a.stop('fast')
    const err = (await running) as pg.DatabaseError
    const [e] = await evicted
    assert.ok(err instanceof pg.DatabaseError)
    assert.equal(err.code, '57P01')
    assert.equal(err.severity, 'FATAL')
    assert.equal(e.reason, 'server-going-away')
    assert.equal(e.inUse, true)
    assert.match(e.evidence, /^the server sent FATAL 57P01 \(admin_shutdown\): terminating connection due to administrator command/)
    const h = await unreachable
    console.log(`# fast shutdown: host read again and reported unreachable ${Date.now() - stoppedAt} ms after the stop (poll interval 60 s): ${h.error}`)
    assert.ok(Date.now() - stoppedAt < 20_000, 'the host was read again long before its next poll')
    client.release()
    await stop
    assert.equal(pool.totalCount, 0, 'the retired client left on release')
    await pool.end()
  })
})
