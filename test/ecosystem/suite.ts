/**
 * The ecosystem tier: one suite, run by each library's test file against its own PostgreSQL on a 127.0.6.x
 * address. A library is described by how the app opens it on a guarded pool and how it runs raw SQL; the
 * suite then asserts, through the library only, what the README's "Works with" table promises:
 *   (a) the guard sees the library's sockets: snapshot() backend pids = the library's pids in pg_stat_activity;
 *   (b) a backend killed under a query (pg_terminate_backend over the Unix socket), idle backends killed, and
 *       (root only) a blackholed host reach the app as errors — the blackhole as PGG_CONNECTION_EVICTED —
 *       with no uncaught exception, and the next query through the library works.
 * Not a *.test.ts file, so the runner does not collect it on its own.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { ErrorCodes, type Pool } from '../../src/index'
import { blackhole, type KernelFault } from '../../src/testing/kernel-faults'
import type { Cluster } from '../../src/testing/cluster'
import { events, kernelSkip, until, useCluster } from '../helpers'

const root = join(__dirname, '..', '..')

/** What the app holds after opening the library on a guarded pool. */
export interface OpenLibrary {
  /** The pool the guard is on (the app's, or the one the library built with our Pool class). */
  pool: Pool
  /** Raw SQL through the library; resolves with the result rows. */
  query(sql: string): Promise<Record<string, unknown>[]>
  /** Closes the library and the pool. */
  close(): Promise<void>
}

export interface Library {
  name: string
  /** This file's path, for skip messages. */
  file: string
  /** A loopback address in 127.0.6.0/24 of its own. */
  host: string
  /** Why the library cannot run here (printed as a skip), or undefined. */
  skip?: string
  /** The runnable example (`node <example>` with DATABASE_URL) that the README's row points at. */
  example: string
  /** `config` is the pg config (with `application_name`) the app would give its pool. */
  open(config: Record<string, unknown>, cluster: Cluster): Promise<OpenLibrary>
}

/**
 * The error (or one it wraps: `cause`, TypeORM's `driverError`, Sequelize's `parent`/`original`, Prisma's `meta.driverAdapterError.cause`, AggregateError's `errors`) that carries
 * `code`, with the path to it, e.g. "DrizzleQueryError.cause"; undefined when none does.
 */
export function findCode(err: unknown, code: string): { error: Error; path: string } | undefined {
  const seen = new Set<unknown>()
  const walk = (e: unknown, path: string): { error: Error; path: string } | undefined => {
    if (e === null || typeof e !== 'object' || seen.has(e)) return undefined
    seen.add(e)
    const o = e as { code?: unknown; cause?: unknown; driverError?: unknown; parent?: unknown; original?: unknown; meta?: unknown; driverAdapterError?: unknown; errors?: unknown }
    if (o.code === code) return { error: e as Error, path }
    for (const key of ['cause', 'driverError', 'parent', 'original', 'meta', 'driverAdapterError'] as const) {
      const hit = walk(o[key], `${path}.${key}`)
      if (hit) return hit
    }
    if (Array.isArray(o.errors)) for (const [i, x] of o.errors.entries()) {
      const hit = walk(x, `${path}.errors[${i}]`)
      if (hit) return hit
    }
    return undefined
  }
  return walk(err, (err as Error)?.constructor?.name ?? typeof err)
}

/** Records uncaught exceptions and unhandled rejections while a scenario runs. */
export function crashWatch(): { stop(): unknown[] } {
  const seen: unknown[] = []
  const onError = (e: unknown): void => {
    seen.push(e)
  }
  process.on('uncaughtException', onError)
  process.on('unhandledRejection', onError)
  return {
    stop() {
      process.off('uncaughtException', onError)
      process.off('unhandledRejection', onError)
      return seen
    },
  }
}

/** One line for the log: class, code, Prisma's meta, the message's first line. */
export function describeError(err: Error): string {
  const o = err as Error & { code?: unknown; meta?: unknown }
  const meta = o.meta === undefined ? '' : ` meta=${JSON.stringify(o.meta)}`
  return `${err.constructor.name} code=${String(o.code)}${meta}: ${err.message.trim().split('\n')[0]}`
}

/** Settles `p` to its rejection reason, or fails if it resolved. */
/**
 * The pid of the backend of `app` that is running `sql` now. No event says "the server is running it":
 * pg_stat_activity is polled.
 */
export async function runningBackend(cluster: Cluster, app: string, sql: string): Promise<number> {
  let pid: number | undefined
  await until(async () => {
    const { rows } = await cluster.primary.query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND state = 'active' AND query LIKE '%' || $2 || '%'",
      [app, sql]
    )
    pid = rows[0]?.pid
    return pid !== undefined
  }, `${sql} is running`)
  return pid!
}

export async function rejection(p: Promise<unknown>, what: string): Promise<Error> {
  return p.then(
    (v) => assert.fail(`${what} resolved (${JSON.stringify(v)}) instead of rejecting`),
    (e: Error) => e
  )
}

/** What a library's test file gets back to add tests of its own. */
export interface Suite {
  cluster: { get(): Cluster }
  open(): Promise<OpenLibrary>
}

export function ecosystemSuite(lib: Library): Suite {
  const app = `pgg-eco-${lib.name.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`
  if (lib.skip) console.log(`# SKIP ${lib.file}: ${lib.skip}`)
  const cluster = useCluster({ primaryHost: lib.host })
  const faults: KernelFault[] = []
  after(async () => {
    for (const f of faults) await f.remove()
  })

  const open = (): Promise<OpenLibrary> => lib.open({ ...cluster.get().config, application_name: app }, cluster.get())
  const libPids = async (): Promise<number[]> => {
    const { rows } = await cluster.get().primary.query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND backend_type = 'client backend' ORDER BY pid",
      [app]
    )
    return rows.map((r) => r.pid)
  }
  const guardPids = (pool: Pool): number[] =>
    pool.guard
      .snapshot()
      .filter((r) => r.state !== 'evicting')
      .map((r) => r.backendPid)
      .filter((p): p is number => p !== null)
      .sort((a, b) => a - b)
  const seventh = async (db: OpenLibrary): Promise<void> => {
    const rows = await db.query('SELECT 7 AS n')
    assert.equal(Number(rows[0]?.n), 7, `the next query through ${lib.name} works`)
  }

  describe(`${lib.name} on a guarded pool`, { skip: lib.skip }, () => {
    it(`${lib.example} runs`, () => {
      const res = spawnSync(process.execPath, [lib.example], {
        cwd: root,
        encoding: 'utf8',
        timeout: 60_000,
        env: { ...process.env, DATABASE_URL: cluster.get().primary.connectionString },
      })
      assert.equal(res.status, 0, `${lib.example} failed:\n${res.stdout}\n${res.stderr}`)
      assert.match(res.stdout, / ok: .*guarded sockets: [1-9]/)
      console.log(`# ${res.stdout.trim()}`)
    })

    it('the guard sees the library’s sockets: snapshot() backend pids = pg_stat_activity pids', async () => {
      const db = await open()
      try {
        // Three at once: each holds a connection until it answers, so a pool (or the library's use of it)
        // that can open several does.
        await Promise.all([1, 2, 3].map(() => db.query('SELECT pg_backend_pid() AS pid')))
        const fromServer = await libPids()
        const fromGuard = guardPids(db.pool)
        console.log(`# ${lib.name}: ${fromServer.length} backends, pg_stat_activity ${fromServer.join(',')}, guard ${fromGuard.join(',')}`)
        assert.ok(fromServer.length >= 1, 'the library opened connections')
        assert.deepEqual(fromGuard, fromServer)
        for (const row of db.pool.guard.snapshot()) assert.equal(row.transport, 'tcp')
      } finally {
        await db.close()
      }
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
        await seventh(db)
        assert.ok(!guardPids(db.pool).includes(pid!), 'the killed backend left the pool')
        assert.deepEqual(watch.stop(), [])
      } finally {
        watch.stop()
        await db.close()
      }
    })

    it('idle backends killed: the pool drops them, no uncaught exception, the next query works', async () => {
      const db = await open()
      const watch = crashWatch()
      try {
        await Promise.all([1, 2].map(() => db.query('SELECT 1')))
        const idle = db.pool.idleCount
        assert.ok(idle >= 1, `idle clients after the queries: ${idle}`)
        // A pooled client's server is read the first time it is back in the pool: until that query has
        // answered, its backend is 'active', not 'idle'.
        await until(() => db.pool.guard.snapshot().every((r) => r.server !== null || r.pooler === true), 'every session has read its server')
        const removed = events(db.pool, 'remove', idle)
        const { rowCount } = await cluster.get().primary.query(
          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND state = 'idle'",
          [app]
        )
        assert.equal(rowCount, idle)
        await removed
        await seventh(db)
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
        await Promise.all([1, 2].map(() => db.query('SELECT 1')))
        const c = cluster.get()
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
        await seventh(db)
        assert.deepEqual(watch.stop(), [])
      } finally {
        watch.stop()
        await db.close()
      }
    })
  })
  return { cluster, open }
}
