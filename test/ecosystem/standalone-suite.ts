/**
 * The ecosystem suite for libraries that pool pg.Clients themselves (Sequelize, knex's default tarn pool):
 * their clients are standalone guarded clients, so the guard's view is `standalone.snapshot()` (rows of
 * the group "standalone host:port/db"), not a pool's. Same promises as suite.ts, through the library only:
 *   (a) the guard sees the library's sockets: standalone.snapshot() backend pids = the library's pids in
 *       pg_stat_activity (by application_name, so the guard's own 'pg-pool-guard monitor' is not counted);
 *   (b) a backend killed under a query and idle backends killed reach the app as errors (or nothing, for
 *       the idle ones) with no uncaught exception, and the next query through the library works;
 *   (c) (root only) a blackholed host reaches the app as PGG_CONNECTION_EVICTED, no uncaught exception,
 *       and the next query after the fault lifts works.
 * Not a *.test.ts file, so the runner does not collect it on its own.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { ErrorCodes, standalone } from '../../src/index'
import { blackhole, type KernelFault } from '../../src/testing/kernel-faults'
import type { Cluster } from '../../src/testing/cluster'
import { kernelSkip, until, useCluster } from '../helpers'
import { crashWatch, describeError, findCode, rejection, runningBackend } from './suite'

const root = join(__dirname, '..', '..')

/** What the app holds after opening the library (its clients standalone guarded ones). */
export interface OpenStandaloneLibrary {
  /** Raw SQL through the library; resolves with the result rows. */
  query(sql: string): Promise<Record<string, unknown>[]>
  /** Closes the library (its pool ends its clients). */
  close(): Promise<void>
}

export interface StandaloneLibrary {
  name: string
  /** This file's path, for skip messages. */
  file: string
  /** A loopback address of its own. */
  host: string
  /** Why the library cannot run here (printed as a skip), or undefined. */
  skip?: string
  /** The runnable example (`node <example>` with DATABASE_URL) that the README's row points at. */
  example: string
  /** The example's "<name> ok: ..." prefix. */
  exampleOk: string
  /**
   * Set (to the reason) when the library can hand a connection whose backend was just terminated under a
   * query to the next query, before pg has seen the socket close (see the README's note on Sequelize):
   * the next query then waits for the killed client to end. Unset, it is sent at once.
   */
  reusesKilledConnection?: string
  /** `config` is the pg config (with `application_name`) the app would give the library. */
  open(config: Record<string, unknown>, cluster: Cluster): Promise<OpenStandaloneLibrary>
}

/** Backend pids of the standalone clients connected to `cluster` (rows being evicted left out). */
export function standalonePids(cluster: Cluster): number[] {
  const name = `standalone ${cluster.primary.host}:${cluster.port}/`
  return standalone
    .snapshot()
    .filter((r) => r.pool.startsWith(name) && r.state !== 'evicting')
    .map((r) => r.backendPid)
    .filter((p): p is number => p !== null)
    .sort((a, b) => a - b)
}

export function standaloneSuite(lib: StandaloneLibrary): { cluster: { get(): Cluster }; open(): Promise<OpenStandaloneLibrary> } {
  const app = `pgg-eco-${lib.name.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`
  if (lib.skip) console.log(`# SKIP ${lib.file}: ${lib.skip}`)
  const cluster = useCluster({ primaryHost: lib.host })
  const faults: KernelFault[] = []
  after(async () => {
    for (const f of faults) await f.remove()
    standalone.stopAll()
  })

  const open = (): Promise<OpenStandaloneLibrary> => lib.open({ ...cluster.get().config, application_name: app }, cluster.get())
  const libPids = async (): Promise<number[]> => {
    const { rows } = await cluster.get().primary.query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND backend_type = 'client backend' ORDER BY pid",
      [app]
    )
    return rows.map((r) => r.pid)
  }
  const seventh = async (db: OpenStandaloneLibrary): Promise<void> => {
    const rows = await db.query('SELECT 7 AS n')
    assert.equal(Number(rows[0]?.n), 7, `the next query through ${lib.name} works`)
  }
  /**
   * The guard drops a standalone client's row on the client's 'end'. The clients belong to the library's
   * own pool and the standalone guard has no per-client removal event, so its public snapshot is polled.
   */
  const untilGone = (pids: number[], what: string): Promise<void> =>
    until(() => !standalonePids(cluster.get()).some((p) => pids.includes(p)), what)

  describe(`${lib.name}: its own pool of standalone guarded clients`, { skip: lib.skip }, () => {
    it(`${lib.example} runs`, () => {
      const res = spawnSync(process.execPath, [lib.example], {
        cwd: root,
        encoding: 'utf8',
        timeout: 60_000,
        env: { ...process.env, DATABASE_URL: cluster.get().primary.connectionString },
      })
      assert.equal(res.status, 0, `${lib.example} failed:\n${res.stdout}\n${res.stderr}`)
      assert.match(res.stdout, new RegExp(`${lib.exampleOk} ok: .*guarded sockets: [1-9]`))
      console.log(`# ${res.stdout.trim()}`)
    })

    it('the guard sees the library’s sockets: standalone.snapshot() backend pids = pg_stat_activity pids', async () => {
      const db = await open()
      let fromGuard: number[] = []
      try {
        // Three at once: each holds a connection until it answers, so the library's pool opens several.
        await Promise.all([1, 2, 3].map(() => db.query('SELECT pg_sleep(0.05), pg_backend_pid() AS pid')))
        const fromServer = await libPids()
        fromGuard = standalonePids(cluster.get())
        console.log(`# ${lib.name}: ${fromServer.length} backends, pg_stat_activity ${fromServer.join(',')}, guard ${fromGuard.join(',')}`)
        assert.ok(fromServer.length >= 2, `the library opened several connections: ${fromServer.length}`)
        assert.deepEqual(fromGuard, fromServer)
        // Nothing else: no row without a backend (a client built and never connected, such as the guard's own).
        assert.deepEqual(standalone.snapshot().filter((r) => r.backendPid === null).map((r) => `${r.pool} ${r.state}`), [])
        const rows = standalone.snapshot().filter((r) => fromServer.includes(r.backendPid!))
        for (const row of rows) {
          assert.equal(row.transport, 'tcp')
          assert.ok(row.socketOptions, 'the socket was hardened')
        }
      } finally {
        await db.close()
      }
      await untilGone(fromGuard, 'closing the library ends its clients (their rows leave the snapshot)')
    })

    it('a backend killed under a query: the query rejects, no uncaught exception, the next query works', async () => {
      const db = await open()
      const watch = crashWatch()
      try {
        await db.query('SELECT 1')
        const slow = rejection(db.query('SELECT pg_sleep(30)'), 'pg_sleep(30) on a terminated backend')
        const pid = await runningBackend(cluster.get(), app, 'pg_sleep(30)')
        await cluster.get().primary.query('SELECT pg_terminate_backend($1)', [pid])
        const err = await slow
        const coded = findCode(err, '57P01') ?? findCode(err, 'ECONNRESET')
        console.log(`# ${lib.name}: killed backend surfaced as ${describeError(err)}${coded ? ` (code ${(coded.error as Error & { code: string }).code} at ${coded.path})` : ''}`)
        if (lib.reusesKilledConnection) await untilGone([pid!], `the killed client ends (${lib.reusesKilledConnection})`)
        await seventh(db)
        await untilGone([pid!], 'the killed backend leaves the snapshot')
        assert.deepEqual(standalonePids(cluster.get()), await libPids(), 'the guard still sees exactly the library’s sockets')
        assert.deepEqual(watch.stop(), [])
      } finally {
        watch.stop()
        await db.close()
      }
    })

    it('idle backends killed: the library drops them, no uncaught exception, the next query works', async () => {
      const db = await open()
      const watch = crashWatch()
      try {
        await Promise.all([1, 2].map(() => db.query('SELECT pg_sleep(0.05)')))
        const { rows } = await cluster.get().primary.query<{ pid: number }>(
          "SELECT pg_terminate_backend(pid), pid FROM pg_stat_activity WHERE application_name = $1 AND state = 'idle'",
          [app]
        )
        const killed = rows.map((r) => r.pid)
        assert.ok(killed.length >= 2, `idle backends killed: ${killed.length}`)
        await untilGone(killed, 'the killed clients end')
        await seventh(db)
        const now = await libPids()
        assert.ok(!now.some((p) => killed.includes(p)), 'no killed backend is in use')
        assert.deepEqual(standalonePids(cluster.get()), now)
        assert.deepEqual(watch.stop(), [])
      } finally {
        watch.stop()
        await db.close()
      }
    })

    const kernel = lib.skip ? undefined : kernelSkip(lib.file)
    it('a blackholed host: the query rejects with PGG_CONNECTION_EVICTED, no uncaught exception, the next query works', { skip: kernel }, async () => {
      const db = await open()
      const watch = crashWatch()
      try {
        await Promise.all([1, 2].map(() => db.query('SELECT pg_sleep(0.05)')))
        const c = cluster.get()
        const before = standalonePids(c)
        const fault = await blackhole(c.primary.host, { port: c.port })
        faults.push(fault)
        const started = Date.now()
        const err = await rejection(db.query('SELECT 1'), 'a query to a blackholed host')
        const elapsed = Date.now() - started
        await fault.remove()
        const coded = findCode(err, ErrorCodes.CONNECTION_EVICTED)
        console.log(`# ${lib.name}: blackhole surfaced after ${elapsed} ms as ${describeError(err)}${coded ? ` (PGG_CONNECTION_EVICTED at ${coded.path})` : ''}`)
        assert.ok(coded, `PGG_CONNECTION_EVICTED is not in what ${lib.name} threw: ${err.stack}`)
        assert.ok(elapsed < 5000, `rejected after ${elapsed} ms`)
        const t = Date.now()
        await seventh(db)
        console.log(`# ${lib.name}: the next query after the fault lifted answered in ${Date.now() - t} ms`)
        const evicted = before.filter((p) => !standalonePids(c).includes(p))
        assert.ok(evicted.length >= 1, `the guard let go of the blackholed clients (before ${before.join(',')}, now ${standalonePids(c).join(',')})`)
        assert.deepEqual(watch.stop(), [])
      } finally {
        watch.stop()
        await db.close()
      }
    })
  })
  return { cluster, open }
}

