/**
 * Host selection with libpq semantics on a real primary + standby: host lists and multi-host URLs,
 * target_session_attrs, coded errors naming every host, roles and timelines read as an ordinary role,
 * regions, and DNS flips through the lookup hook.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type EvictionEvent, type HostState, NoHostAvailableError, Pool } from '../../src/index'
import { freePort } from '../../src/testing/cluster'
import { writeLoad } from '../../src/testing/workload'
import { until, useCluster } from '../helpers'

const cluster = useCluster({ standby: true, primaryHost: '127.0.0.52', standbyHost: '127.0.0.53' })
const A = '127.0.0.52'
const B = '127.0.0.53'

async function serverOf(pool: Pool): Promise<string> {
  return (await pool.query('SELECT host(inet_server_addr()) AS h')).rows[0].h
}

describe('host selection (libpq target_session_attrs)', () => {
  it('read-write finds the primary wherever it is listed; standby and read-only find the standby', async () => {
    const c = cluster.get()
    for (const [tsa, want] of [['read-write', A], ['primary', A], ['standby', B], ['read-only', B], ['prefer-standby', B], ['any', B]] as const) {
      const pool = new Pool({ ...c.config, host: `${B},${A}`, guard: { targetSessionAttrs: tsa } })
      assert.equal(await serverOf(pool), want, tsa)
      const [row] = pool.guard.snapshot()
      assert.equal(row.role, want === A ? 'primary' : 'standby')
      await pool.end()
    }
  })

  it('a multi-host connection string with its own target_session_attrs', async () => {
    const c = cluster.get()
    const url = `postgresql://${c.user}:${encodeURIComponent(c.password)}@${B}:${c.port},${A}:${c.port}/${c.database}?target_session_attrs=read-write`
    const pool = new Pool({ connectionString: url })
    assert.equal(await serverOf(pool), A)
    assert.equal(pool.guard.topology().targetSessionAttrs, 'read-write')
    assert.equal(pool.options.connectionString, url, 'pool.options keeps what the user gave')
    await pool.end()
  })

  it('no suitable host: one coded error naming every host tried and why it was rejected', async () => {
    const c = cluster.get()
    const dead = await freePort(['127.0.0.54'])
    const pool = new Pool({ ...c.config, host: [A, '127.0.0.54'], port: [c.port, dead], guard: { targetSessionAttrs: 'standby' } })
    const err = await pool.query('SELECT 1').then(() => undefined, (e: Error) => e)
    assert.ok(err instanceof NoHostAvailableError, String(err))
    assert.equal(err.code, 'PGG_NO_HOST_AVAILABLE')
    assert.deepEqual(err.attempts.map((x) => `${x.host}:${x.port}`).sort(), [`${A}:${c.port}`, `127.0.0.54:${dead}`].sort())
    assert.match(err.message, new RegExp(`${A.replace(/\./g, '\\.')}:${c.port} \\(.*is a read-write primary, wanted target_session_attrs=standby\\)`))
    assert.match(err.message, /127\.0\.0\.54:\d+ \(connect ECONNREFUSED/)
    assert.ok(!err.message.includes(c.password))
    await pool.end()
  })

  it('roles and timelines of every host, read as an ordinary role (no superuser, no grant)', async () => {
    const c = cluster.get()
    await c.primary.query("DO $$ BEGIN CREATE ROLE app LOGIN PASSWORD 'app-pw'; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    await c.caughtUp()
    const pool = new Pool({ host: c.hosts, port: c.port, user: 'app', password: 'app-pw', database: c.database, guard: { targetSessionAttrs: 'read-write' } })
    await pool.query('SELECT 1')
    await until(() => pool.guard.topology().hosts.every((h) => h.timeline !== null), 'both timelines are known')
    const topo = pool.guard.topology()
    assert.equal(topo.primary, `${A}:${c.port}`)
    assert.deepEqual(topo.hosts.map((h) => [h.key, h.role?.inHotStandby, h.timeline]), [[`${A}:${c.port}`, false, 1], [`${B}:${c.port}`, true, 1]])
    assert.equal(pool.guard.snapshot()[0].timeline, 1)
    await pool.end()
  })

  it('regions: rows carry their region; a single-region pool leaves sockets outside the primary\'s region', async () => {
    const c = cluster.get()
    const regions = { 'eu-west': [`${A}/32`], 'us-east': [B] }
    const pool = new Pool({ ...c.config, host: `${B},${A}`, max: 2, guard: { targetSessionAttrs: 'any', regions, singleRegion: true } })
    const evictions: EvictionEvent[] = []
    pool.guard.on('evict', (e) => evictions.push(e))
    const first = await pool.connect() // list order, primary not known yet: the standby in us-east
    assert.equal(pool.guard.snapshot()[0].region, 'us-east')
    await until(() => evictions.length === 1, 'the us-east socket is evicted once the primary is known to be in eu-west')
    assert.equal(evictions[0].reason, 'dual-region')
    assert.match(evictions[0].evidence, /socket in region us-east, the primary 127\.0\.0\.52:\d+ is in eu-west/)
    first.release()
    assert.equal(await serverOf(pool), A, 'new connections go to the primary\'s region first')
    assert.deepEqual(pool.guard.snapshot().map((r) => r.region), ['eu-west'])
    await pool.end()
  })
})

describe('DNS (stale-dns, through the lookup hook)', () => {
  it('the name flips to the other host: sockets to the old IP are evicted, new ones go to the new IP', async () => {
    const c = cluster.get()
    let answer = A
    const lookup = async (name: string): Promise<string[]> => {
      if (name !== 'db.failover.test') throw new Error(`unexpected lookup of ${name}`)
      return [answer]
    }
    const pool = new Pool({ ...c.config, host: 'db.failover.test', max: 4, guard: { lookup } })
    pool.on('error', () => {})
    const evictions: EvictionEvent[] = []
    pool.guard.on('evict', (e) => evictions.push(e))
    const load = await writeLoad(pool, { writers: 4, table: 'dns_writes', pauseMs: 5 })
    await load.firstAckOn(A)
    await until(() => pool.guard.snapshot().length === 4, 'four sockets to the old address')
    // The old primary stays up (read-only here, so the workload's writes on it fail rather than diverge).
    const moved = new Promise<number>((resolve) => {
      pool.guard.on('topology', (h: HostState) => h.addresses?.includes(B) && resolve(Date.now()))
    })
    const flippedAt = Date.now()
    answer = B
    const seenAt = await moved
    await until(() => evictions.length >= 4, 'all four old sockets are evicted as stale-dns')
    assert.ok(evictions.every((e) => e.reason === 'stale-dns' && e.endpoint.startsWith(A)))
    assert.match(evictions[0].evidence, /db\.failover\.test now resolves to 127\.0\.0\.53; this socket goes to 127\.0\.0\.52/)
    assert.ok(seenAt - flippedAt <= pool.guard.options.dnsIntervalMs * 1.2 + 300, `flip seen after ${seenAt - flippedAt} ms`)
    // B is a standby: reads work there. The sockets now all go to the new address.
    const rows = await Promise.all([serverOf(pool), serverOf(pool)])
    assert.deepEqual(rows, [B, B])
    await load.stop()
    assert.equal(load.ackedBy(A, seenAt + 1).length, 0, 'no write on the old address after the flip was seen')
    assert.ok(pool.guard.snapshot().every((r) => r.remoteAddress === B))
    await pool.end()
  })
})
