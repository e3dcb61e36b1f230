/**
 * pg-boss 12 under guardPgBoss(): its pool (built in start(), again after every stop()) is a guarded pool,
 * and its LISTEN/NOTIFY client (a `new pg.Client` of its own) a standalone guarded client. Through pg-boss
 * only: the guard sees every pg-boss socket (pool + LISTEN = pg_stat_activity), also after a restart; a
 * backend killed under a query, killed idle backends and the LISTEN backend killed reach the app as errors
 * (pg-boss's 'error' event) with no uncaught exception, pg-boss listens again on a guarded client and the
 * next query works; (root) a blackholed host reaches the app as PGG_CONNECTION_EVICTED. examples/pg-boss.
 * pg-boss 12 needs Node >= 22.12 (its engines field): on older Node the file skips and says so.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import type { PgBoss } from 'pg-boss' with { 'resolution-mode': 'import' }
import { ErrorCodes, type EvictionEvent, guardPgBoss, type Pool, standalone } from '../../src/index'
import { blackhole, type KernelFault } from '../../src/testing/kernel-faults'
import { kernelSkip, until, useCluster } from '../helpers'
import { standalonePids } from './standalone-suite'
import { crashWatch, describeError, findCode, rejection, runningBackend } from './suite'

const FILE = 'test/ecosystem/pg-boss.test.ts'
const root = join(__dirname, '..', '..')
const [major, minor] = process.versions.node.split('.').map(Number)
const skip = major > 22 || (major === 22 && minor >= 12) ? undefined : `pg-boss 12 needs Node >= 22.12 (its engines field); this is ${process.version}`
if (skip) console.log(`# SKIP ${FILE}: ${skip}`)

const app = 'pgg-eco-pg-boss'

describe('pg-boss 12 under guardPgBoss()', { skip }, () => {
  const cluster = useCluster({ primaryHost: '127.0.25.4' })
  const faults: KernelFault[] = []
  after(async () => {
    for (const f of faults) await f.remove()
    standalone.stopAll()
  })

  interface Opened {
    boss: PgBoss
    pool(): Pool
    /** What pg-boss emitted as 'error' (pool and LISTEN errors end up there). */
    errors: Error[]
    query(sql: string): Promise<Record<string, unknown>[]>
  }
  const open = async (): Promise<Opened> => {
    const { PgBoss } = await import('pg-boss')
    // A connection string, as most apps give pg-boss (pg resolves host and database from it).
    const boss = guardPgBoss(
      new PgBoss({ connectionString: cluster.get().primary.connectionString, application_name: app, max: 4, useListenNotify: true, supervise: false, schedule: false })
    )
    const errors: Error[] = []
    boss.on('error', (e) => errors.push(e))
    await boss.start()
    const db = boss.getDb() as unknown as { pool: Pool; executeSql(text: string): Promise<{ rows: Record<string, unknown>[] }> }
    return { boss, errors, pool: () => db.pool, query: async (text) => (await db.executeSql(text)).rows }
  }
  const stop = (o: Opened): Promise<void> => o.boss.stop({ graceful: false, timeout: 1000 })

  const serverPids = async (): Promise<number[]> => {
    const { rows } = await cluster.get().primary.query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND backend_type = 'client backend' ORDER BY pid",
      [app]
    )
    return rows.map((r) => r.pid)
  }
  /** The LISTEN client's backend, from the server: the one whose last statement was LISTEN or its heartbeat. */
  const listenPid = async (): Promise<number | undefined> => {
    const { rows } = await cluster.get().primary.query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND (query LIKE 'LISTEN %' OR query LIKE '%pg_listening_channels%')",
      [app]
    )
    assert.ok(rows.length <= 1, `one LISTEN client at most: ${rows.length}`)
    return rows[0]?.pid
  }
  const poolPids = (pool: Pool): number[] =>
    pool.guard.snapshot().filter((r) => r.state !== 'evicting').map((r) => r.backendPid).filter((p): p is number => p !== null)
  /** Every pg-boss socket the guard sees: its pool's and the LISTEN client. */
  const guardPids = (o: Opened): number[] => [...poolPids(o.pool()), ...standalonePids(cluster.get())].sort((a, b) => a - b)
  const seventh = async (o: Opened): Promise<void> => {
    const rows = await o.query('SELECT 7 AS n')
    assert.equal(Number(rows[0]?.n), 7, 'the next query through pg-boss works')
  }
  /** pg-boss listens again (on a new client, after its 1 s backoff) and the guard has that client. */
  const relistened = async (old: number | undefined): Promise<number> => {
    let pid: number | undefined
    await until(async () => {
      pid = await listenPid()
      return pid !== undefined && pid !== old && standalonePids(cluster.get()).includes(pid)
    }, 'pg-boss listens again on a guarded client', 15_000, 50)
    return pid!
  }

  it('examples/pg-boss/app.mjs runs', () => {
    const res = spawnSync(process.execPath, ['examples/pg-boss/app.mjs'], {
      cwd: root,
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, DATABASE_URL: cluster.get().primary.connectionString },
    })
    assert.equal(res.status, 0, `examples/pg-boss/app.mjs failed:\n${res.stdout}\n${res.stderr}`)
    assert.match(res.stdout, /pg-boss ok: .*guarded sockets: [1-9].*LISTEN 1\)/)
    console.log(`# ${res.stdout.trim()}`)
  })

  it('the guard sees every pg-boss socket (pool + LISTEN client = pg_stat_activity), again after stop() + start()', async () => {
    const o = await open()
    try {
      const seen = async (when: string): Promise<number> => {
        await Promise.all([1, 2, 3].map(() => o.query('SELECT pg_sleep(0.05)')))
        const listen = await listenPid()
        assert.ok(listen !== undefined, `${when}: pg-boss has a LISTEN client`)
        assert.ok(standalonePids(cluster.get()).includes(listen), `${when}: the LISTEN client (pid ${listen}) is a guarded standalone client`)
        const fromServer = await serverPids()
        console.log(`# pg-boss ${when}: pool ${poolPids(o.pool()).join(',')} + LISTEN ${listen}; pg_stat_activity ${fromServer.join(',')}`)
        assert.ok(fromServer.length >= 3, `pg-boss opened its pool and a LISTEN client: ${fromServer.length}`)
        assert.deepEqual(guardPids(o), fromServer)
        // No row without a backend: the guard's own clients (built while pg.Client is replaced) are not standalone ones.
        assert.deepEqual(standalone.snapshot().filter((r) => r.backendPid === null).map((r) => `${r.pool} ${r.state}`), [])
        return listen
      }
      const firstPool = o.pool()
      const firstListen = await seen('after start()')
      await stop(o)
      await o.boss.start()
      assert.notEqual(o.pool(), firstPool, 'start() after stop() built a new pool')
      assert.ok(typeof o.pool().guard?.snapshot === 'function', 'the new pool is guarded')
      assert.notEqual(await seen('after stop() + start()'), firstListen, 'a new LISTEN client')
      assert.deepEqual(o.errors, [])
    } finally {
      await stop(o)
    }
  })

  it('killed backends (under a query, idle, the LISTEN one): errors, no uncaught exception, pg-boss listens again, the next query works', async () => {
    const o = await open()
    const watch = crashWatch()
    try {
      await Promise.all([1, 2].map(() => o.query('SELECT pg_sleep(0.05)')))
      const slow = rejection(o.query('SELECT pg_sleep(30)'), 'pg_sleep(30) on a terminated backend')
      const pid = await runningBackend(cluster.get(), app, 'pg_sleep(30)')
      await cluster.get().primary.query('SELECT pg_terminate_backend($1)', [pid])
      const err = await slow
      assert.ok(findCode(err, '57P01'), `the query rejected with 57P01: ${describeError(err)}`)
      console.log(`# pg-boss: killed backend surfaced as ${describeError(err)}`)
      await seventh(o)

      // Every idle backend: the pool's and the LISTEN client (idle between its heartbeats).
      const listen = await listenPid()
      const { rows } = await cluster.get().primary.query<{ pid: number }>(
        "SELECT pg_terminate_backend(pid), pid FROM pg_stat_activity WHERE application_name = $1 AND state = 'idle'",
        [app]
      )
      const killed = rows.map((r) => r.pid)
      assert.ok(listen !== undefined && killed.includes(listen), `the LISTEN backend ${listen} was among the killed ${killed.join(',')}`)
      const started = Date.now()
      const again = await relistened(listen)
      console.log(`# pg-boss: LISTEN again on pid ${again} (guarded) ${Date.now() - started} ms after its backend was killed; pg-boss 'error' events: ${o.errors.map(describeError).join(' | ')}`)
      assert.ok(o.errors.some((e) => /terminat/i.test(e.message)), 'pg-boss reported the lost LISTEN connection as an error event')
      await seventh(o)
      assert.ok(!guardPids(o).some((p) => killed.includes(p)), 'no killed backend is still tracked')
      assert.deepEqual(watch.stop(), [])
    } finally {
      watch.stop()
      await stop(o)
    }
  })

  const kernel = skip ? undefined : kernelSkip(FILE)
  it('a blackholed host: the query rejects with PGG_CONNECTION_EVICTED, the LISTEN client is evicted, no uncaught exception, both come back', { skip: kernel }, async () => {
    const o = await open()
    const watch = crashWatch()
    try {
      await Promise.all([1, 2].map(() => o.query('SELECT pg_sleep(0.05)')))
      const listen = await listenPid()
      const c = cluster.get()
      const listenEvicted = new Promise<EvictionEvent>((resolve, reject) => {
        const t = setTimeout(() => {
          standalone.off('evict', on)
          reject(new Error(`no 'evict' of the LISTEN client (pid ${listen}) within 20 s`))
        }, 20_000)
        const on = (e: EvictionEvent): void => {
          if (e.backendPid !== listen) return
          clearTimeout(t)
          standalone.off('evict', on)
          resolve(e)
        }
        standalone.on('evict', on)
      })
      const fault = await blackhole(c.primary.host, { port: c.port })
      faults.push(fault)
      const started = Date.now()
      const err = await rejection(o.query('SELECT 1'), 'a query to a blackholed host')
      const elapsed = Date.now() - started
      const coded = findCode(err, ErrorCodes.CONNECTION_EVICTED)
      console.log(`# pg-boss: blackhole surfaced after ${elapsed} ms as ${describeError(err)}${coded ? ` (PGG_CONNECTION_EVICTED at ${coded.path})` : ''}`)
      assert.ok(coded, `PGG_CONNECTION_EVICTED is not in what pg-boss threw: ${err.stack}`)
      assert.ok(elapsed < 5000, `rejected after ${elapsed} ms`)
      const e = await listenEvicted
      console.log(`# pg-boss: LISTEN client evicted ${e.at - started} ms after the blackhole (${e.reason})`)
      await fault.remove()
      await seventh(o)
      await relistened(listen)
      assert.ok(o.errors.some((x) => findCode(x, ErrorCodes.CONNECTION_EVICTED)), `pg-boss's 'error' event heard the coded eviction: ${o.errors.map(describeError).join(' | ')}`)
      assert.deepEqual(watch.stop(), [])
    } finally {
      watch.stop()
      await stop(o)
    }
  })
})
