/**
 * Failover and split-brain on a real primary + streaming standby, under a write load of 8 writers.
 * The old primary keeps running and accepting writes unless the test stops it: the bank's DR story.
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import pg from 'pg'
import { ConnectionEvictedError, type EvictionEvent, type HostState, Pool } from '../../src/index'
import { type Cluster, startCluster } from '../../src/testing/cluster'
import { writeLoad } from '../../src/testing/workload'
import { until } from '../helpers'

const clusters: Cluster[] = []
after(async () => {
  for (const c of clusters) await c.stop()
})
async function cluster(a: string, b: string): Promise<Cluster> {
  const c = await startCluster({ standby: true, primaryHost: a, standbyHost: b })
  clusters.push(c)
  return c
}

/** Resolves with the instant the guard first reports `host` as a primary on a timeline above 1. */
function newTimelineSeen(pool: Pool, hostKey: string): Promise<number> {
  return new Promise((resolve) => {
    const onChange = (h: HostState): void => {
      if (h.key === hostKey && h.role && !h.role.inHotStandby && (h.timeline ?? 0) > 1) {
        pool.guard.off('topology', onChange)
        resolve(Date.now())
      }
    }
    pool.guard.on('topology', onChange)
  })
}

describe('failover and split-brain (multi-host, target_session_attrs=read-write)', () => {
  it('split-brain: after promotion no write reaches the old primary once the guard saw the new timeline; pg.Pool keeps writing there', async () => {
    const c = await cluster('127.0.0.44', '127.0.0.45')
    const [a, b] = c.servers
    const guarded = new Pool({ ...c.config, host: c.hosts, max: 8, guard: { targetSessionAttrs: 'read-write' } })
    const plain = new pg.Pool({ ...c.config, host: a.host, max: 8 })
    for (const p of [guarded, plain]) p.on('error', () => {})
    const evictions: EvictionEvent[] = []
    guarded.guard.on('evict', (e) => evictions.push(e))

    const load = await writeLoad(guarded, { table: 'guarded_writes' })
    const plainLoad = await writeLoad(plain, { table: 'plain_writes' })
    await load.firstAckOn(a.host)
    await c.caughtUp() // the tables exist on the standby before it is promoted
    const seen = newTimelineSeen(guarded, `${b.host}:${b.port}`)
    const promotedAt = Date.now()
    await c.promote()
    const seenAt = await seen
    const firstOnNew = await load.firstAckOn(b.host, promotedAt)
    await until(() => plainLoad.ackedBy(a.host, seenAt + 1000).length > 0, 'pg.Pool writes to the old primary a second later', 5000)
    const summary = await load.stop()
    const plainSummary = await plainLoad.stop()

    const afterSeen = load.sentAndAckedBy(a.host, seenAt)
    const afterPromotion = load.ackedBy(a.host, promotedAt)
    const lastOnOld = load.ackedBy(a.host).reduce((m, x) => Math.max(m, x.at), 0)
    console.log(
      `# split-brain: guard saw timeline 2 ${seenAt - promotedAt} ms after promote(); first write on the new primary after ` +
        `${firstOnNew.at - promotedAt} ms; old primary acknowledged ${afterPromotion.length} guarded writes after promote(), ` +
        `the last ${lastOnOld - promotedAt} ms after it; of the writes sent after the guard saw the new timeline, ${afterSeen.length}. ` +
        `pg.Pool: ${plainLoad.ackedBy(a.host, promotedAt).length} writes to the old primary after promote(), none to the new one ` +
        `(${JSON.stringify(plainSummary.byHost)})`
    )
    assert.equal(afterSeen.length, 0, 'no guarded write sent after the guard saw the new timeline was acknowledged by the old primary')
    assert.ok(lastOnOld - promotedAt < 1000, `writes to the old primary stopped ${lastOnOld - promotedAt} ms after promotion`)
    assert.ok(summary.byHost[b.host] > 0)
    assert.equal(plainSummary.byHost[b.host] ?? 0, 0)
    assert.ok(evictions.length > 0 && evictions.every((e) => e.reason === 'fenced' && e.host === a.host))
    const topo = guarded.guard.topology()
    assert.equal(topo.primary, `${b.host}:${b.port}`)
    assert.match(topo.hosts.find((h) => h.key.startsWith(a.host))!.fenced!, /split-brain/)
    // New connections to the fenced host are refused with a coded error.
    const direct = new Pool({ ...c.config, host: c.hosts, guard: { targetSessionAttrs: 'any', topologyIntervalMs: 100 } })
    await until(() => direct.guard.topology().hosts.some((h) => h.fenced !== null), 'a fresh pool fences the stale primary too')
    const client = await direct.connect()
    assert.equal((await client.query('SELECT host(inet_server_addr()) AS h')).rows[0].h, b.host, 'tsa any still avoids the fenced host')
    client.release()
    await direct.end()
    await guarded.end()
    await plain.end()
  })

  it("topologyEvictInUse 'release': a query in flight on the fenced host finishes; its client is retired on release", async () => {
    const c = await cluster('127.0.0.55', '127.0.0.56')
    const [a, b] = c.servers
    const pool = new Pool({ ...c.config, host: c.hosts, max: 2, guard: { targetSessionAttrs: 'read-write', topologyEvictInUse: 'release' } })
    const held = await pool.connect()
    const running = held.query('SELECT pg_sleep(1.5), host(inet_server_addr()) AS h')
    const fenced = new Promise<EvictionEvent>((resolve) => pool.guard.once('evict', resolve))
    await c.promote(b)
    const e = await fenced
    assert.equal(e.reason, 'fenced')
    assert.equal(e.inUse, true)
    assert.equal((await running).rows[0].h, a.host, 'the query in flight completed on the old primary')
    const removed = new Promise((resolve) => pool.once('remove', resolve))
    held.release()
    await removed
    assert.equal(pool.totalCount, 0)
    assert.equal(await pool.query('SELECT host(inet_server_addr()) AS h').then((r) => r.rows[0].h), b.host)
    await pool.end()
  })

  it('old primary stopped and standby promoted: writes move to the new primary by themselves', async () => {
    const c = await cluster('127.0.0.46', '127.0.0.47')
    const [a, b] = c.servers
    const pool = new Pool({ ...c.config, host: c.hosts, max: 8, guard: { targetSessionAttrs: 'read-write' } })
    pool.on('error', () => {})
    const load = await writeLoad(pool)
    await load.firstAckOn(a.host)
    await c.caughtUp()
    await c.stopPrimary('immediate')
    const stoppedAt = Date.now()
    await c.promote(b)
    const first = await load.firstAckOn(b.host, stoppedAt, 15_000)
    await load.firstAckOn(b.host, first.at + 200) // and keeps landing there
    const s = await load.stop()
    console.log(`# failover: first write on the new primary ${first.at - stoppedAt} ms after the old one stopped; ${s.failures} failed writes ${JSON.stringify(s.failureCodes)}`)
    assert.equal(load.ackedBy(a.host, stoppedAt + 1).length, 0)
    await pool.end()
  })

  it('a standby promoted under a read-only pool: its connections are evicted as wrong-role', async () => {
    const c = await cluster('127.0.0.48', '127.0.0.49')
    const b = c.standby!
    const pool = new Pool({ ...c.config, host: c.hosts, max: 3, guard: { targetSessionAttrs: 'standby' } })
    const clients = await Promise.all([pool.connect(), pool.connect(), pool.connect()])
    for (const cl of clients) assert.equal((await cl.query('SELECT pg_is_in_recovery() AS r')).rows[0].r, true)
    const held = clients.pop()!
    for (const cl of clients) cl.release()
    const evicted = new Promise<EvictionEvent[]>((resolve) => {
      const got: EvictionEvent[] = []
      pool.guard.on('evict', (e) => got.push(e) === 3 && resolve(got))
    })
    await c.promote(b)
    const err = await held.query('SELECT pg_sleep(5)').then(() => undefined, (e: Error) => e)
    const got = await evicted
    assert.deepEqual(got.map((e) => e.reason), ['wrong-role', 'wrong-role', 'wrong-role'])
    assert.match(got[0].evidence, /is now a read-write primary, target_session_attrs=standby/)
    assert.ok(err instanceof ConnectionEvictedError)
    held.release()
    // No standby left: a new connection names every host and why it was rejected.
    await assert.rejects(pool.query('SELECT 1'), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'PGG_NO_HOST_AVAILABLE')
      // Both, each with its reason, in the plan's order (the old primary may be fenced by then, and tried first).
      assert.match(e.message, /no host satisfies target_session_attrs=standby; tried /)
      assert.match(e.message, /127\.0\.0\.49:\d+ \(127\.0\.0\.49:\d+ is a read-write primary, wanted target_session_attrs=standby\)/)
      assert.match(e.message, /127\.0\.0\.48:\d+ \(127\.0\.0\.48:\d+ is \w/)
      return true
    })
    await pool.end()
  })

  it('the old primary restarted as a standby: fencing lifts, and a read-write pool never uses it', async () => {
    const c = await cluster('127.0.0.50', '127.0.0.51')
    const [a, b] = c.servers
    const pool = new Pool({ ...c.config, host: c.hosts, max: 4, guard: { targetSessionAttrs: 'read-write' } })
    pool.on('error', () => {})
    const any = new Pool({ ...c.config, host: c.hosts, max: 4, guard: { targetSessionAttrs: 'any', loadBalanceHosts: 'random' } })
    any.on('error', () => {})
    await pool.query('SELECT 1')
    await c.promote(b)
    await until(() => pool.guard.topology().hosts.some((h) => h.key.startsWith(a.host) && h.fenced !== null), 'the old primary is fenced')
    await c.restartAsStandby(a, b)
    await until(() => {
      const h = pool.guard.topology().hosts.find((x) => x.key.startsWith(a.host))!
      return h.fenced === null && h.role?.inHotStandby === true
    }, 'the old primary rejoined as a standby and is no longer fenced', 10_000)
    for (let i = 0; i < 10; i++) {
      assert.equal((await pool.query('SELECT host(inet_server_addr()) AS h')).rows[0].h, b.host)
    }
    // A pool that accepts any role may use the rejoined standby again.
    const seen = new Set<string>()
    await until(async () => {
      const client = await any.connect()
      seen.add((await client.query('SELECT host(inet_server_addr()) AS h')).rows[0].h)
      client.release(true)
      return seen.has(a.host)
    }, 'tsa=any reaches the rejoined standby', 10_000, 0)
    assert.ok(pool.guard.snapshot().every((r) => r.remoteAddress === b.host && r.role === 'primary'))
    await pool.end()
    await any.end()
  })
})
