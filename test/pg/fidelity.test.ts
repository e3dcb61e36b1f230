/**
 * Drop-in fidelity: every scenario runs against pg.Pool and against pg-pool-guard's Pool on the same real
 * PostgreSQL, records events (with normalized client ids), counters and outcomes, and the two traces must be
 * identical. The scenarios follow pg-pool's own test suite: sizing, queueing, idle timeout, connection
 * timeout, maxUses, maxLifetimeSeconds, idle-client errors, release(err), ending, callback forms.
 */
import assert from 'node:assert/strict'
import { createServer, type Server, type Socket } from 'node:net'
import { describe, it } from 'node:test'
import pg from 'pg'
import { Pool } from '../../src/index'
import { nextEvent, useCluster } from '../helpers'

const cluster = useCluster()

type AnyPool = pg.Pool
interface Rec {
  trace: string[]
  /** Resolves once every client the pool connected has been removed ('remove' follows end() asynchronously). */
  allRemoved(): Promise<void>
  note(s: string): void
  counts(label: string): void
  id(client: unknown): string
}

function record(pool: AnyPool): Rec {
  const ids = new Map<unknown, number>()
  const trace: string[] = []
  let connects = 0
  let removes = 0
  let onRemove = (): void => {}
  pool.on('connect', () => connects++)
  pool.on('remove', () => {
    removes++
    onRemove()
  })
  const id = (c: unknown): string => {
    if (!ids.has(c)) ids.set(c, ids.size + 1)
    return `c${ids.get(c)}`
  }
  for (const ev of ['connect', 'acquire', 'remove'] as const) pool.on(ev, (c: unknown) => trace.push(`${ev} ${id(c)}`))
  pool.on('release', (err: Error | undefined, c: unknown) => trace.push(`release ${id(c)}${err ? ` err=${err.message}` : ''}`))
  pool.on('error', (err: Error, c: unknown) => trace.push(`error ${id(c)} ${err.message}`))
  return {
    trace,
    id,
    allRemoved: () =>
      new Promise<void>((resolve) => {
        onRemove = () => removes >= connects && resolve()
        onRemove()
      }),
    note: (s) => trace.push(s),
    counts: (label) =>
      trace.push(`${label}: total=${pool.totalCount} idle=${pool.idleCount} waiting=${pool.waitingCount} expired=${pool.expiredCount}`),
  }
}

type Scenario = (make: (opts?: pg.PoolConfig) => AnyPool) => Promise<string[]>

const implementations: [string, (o?: pg.PoolConfig) => AnyPool][] = [
  ['pg.Pool', (o) => new pg.Pool(o)],
  ['pg-pool-guard', (o) => new Pool(o)],
]

/**
 * Runs a scenario on both pools; the traces must match, and are returned for scenario-specific checks.
 * `ordered: false` compares them as multisets and `anonymous: true` without client ids: where several server
 * connections run at once, which one the server answers first differs from run to run for pg.Pool itself.
 */
async function same(scenario: Scenario, { ordered = true, anonymous = false } = {}): Promise<string[]> {
  const traces: string[][] = []
  for (const [, make] of implementations) traces.push(await scenario(make))
  const norm = (t: string[]): string[] => {
    const u = anonymous ? t.map((x) => x.replace(/ c\d+/g, ' c?')) : t
    return ordered ? u : [...u].sort()
  }
  assert.deepEqual(norm(traces[1]), norm(traces[0]), 'pg-pool-guard behaved differently from pg.Pool')
  return traces[1]
}

const base = (): pg.PoolConfig => ({ ...cluster.get().config })

describe('drop-in fidelity with pg.Pool (same trace on real PostgreSQL)', () => {
  it('sizing and queueing: max 2, five concurrent queries', async () => {
    const trace = await same(async (make) => {
      const pool = make({ ...base(), max: 2 })
      const r = record(pool)
      const results = Array.from({ length: 5 }, (_, i) => pool.query('SELECT $1::int AS n, pg_sleep(0.05)', [i]))
      r.counts('dispatched')
      const rows = await Promise.all(results)
      r.note(`results ${rows.map((x) => x.rows[0].n).join(',')}`)
      r.counts('done')
      await pool.end()
      await r.allRemoved()
      r.counts('ended')
      r.note(`ending=${pool.ending} ended=${pool.ended}`)
      return r.trace
    }, { ordered: false, anonymous: true })
    assert.ok(trace.includes('dispatched: total=2 idle=0 waiting=3 expired=0'), trace.join('\n'))
    for (const c of ['c1', 'c2']) assert.ok(trace.indexOf(`connect ${c}`) < trace.indexOf(`acquire ${c}`), 'connect precedes acquire')
    assert.ok(trace.includes('results 0,1,2,3,4'))
    assert.equal(trace.filter((t) => t.startsWith('connect')).length, 2)
    assert.ok(trace.includes('ending=true ended=true'))
  })

  it('idle timeout removes an idle client', async () => {
    const trace = await same(async (make) => {
      const pool = make({ ...base(), idleTimeoutMillis: 50 })
      const r = record(pool)
      const c = await pool.connect()
      c.release()
      r.counts('released')
      await nextEvent(pool, 'remove')
      r.counts('after idle timeout')
      await pool.end()
      await r.allRemoved()
      return r.trace
    })
    assert.deepEqual(trace.slice(0, 4), ['connect c1', 'acquire c1', 'release c1', 'released: total=1 idle=1 waiting=0 expired=0'])
    assert.ok(trace.includes('after idle timeout: total=0 idle=0 waiting=0 expired=0'))
  })

  it('connection timeout: a server that accepts and never answers, and a full pool', async () => {
    const { server, port, sockets } = await silentServer()
    try {
      const trace = await same(async (make) => {
        const pool = make({ host: '127.0.0.1', port, user: 'x', password: 'y', connectionTimeoutMillis: 100 })
        const r = record(pool)
        await pool.connect().then(
          () => r.note('connected?!'),
          (err: Error) => r.note(`connect failed: ${err.message}`)
        )
        r.counts('after')
        await pool.end()
        await r.allRemoved()
        const full = make({ ...base(), max: 1, connectionTimeoutMillis: 100 })
        const r2 = record(full)
        const held = await full.connect()
        await full.connect().then(
          () => r2.note('got a second client?!'),
          (err: Error) => r2.note(`checkout failed: ${err.message}`)
        )
        held.release()
        await full.end()
        await r2.allRemoved()
        return [...r.trace, ...r2.trace]
      })
      assert.ok(trace.includes('connect failed: Connection terminated due to connection timeout'), trace.join('\n'))
      assert.ok(trace.includes('checkout failed: timeout exceeded when trying to connect'), trace.join('\n'))
    } finally {
      for (const s of sockets) s.destroy()
      server.close()
    }
  })

  it('maxUses retires a client after N uses', async () => {
    const trace = await same(async (make) => {
      const pool = make({ ...base(), maxUses: 2 })
      const r = record(pool)
      for (let i = 0; i < 3; i++) {
        const removed = i === 1 ? nextEvent(pool, 'remove') : undefined
        await pool.query('SELECT 1')
        await removed
        r.counts(`query ${i}`)
      }
      await pool.end()
      await r.allRemoved()
      return r.trace
    })
    assert.deepEqual(trace.filter((t) => /^(connect|remove)/.test(t)), ['connect c1', 'remove c1', 'connect c2', 'remove c2'])
  })

  it('maxLifetimeSeconds expires an idle client (acquire, release, remove)', async () => {
    const trace = await same(async (make) => {
      const pool = make({ ...base(), maxLifetimeSeconds: 1 })
      const r = record(pool)
      await pool.query('SELECT 1')
      await nextEvent(pool, 'remove', 5000)
      r.counts('expired')
      await pool.end()
      await r.allRemoved()
      return r.trace
    })
    assert.deepEqual(trace, [
      'connect c1', 'acquire c1', 'release c1', 'acquire c1', 'release c1', 'remove c1',
      'expired: total=0 idle=0 waiting=0 expired=0',
    ])
  })

  it('an idle client killed by the server is removed and its error emitted with the client', async () => {
    const trace = await same(async (make) => {
      const pool = make(base())
      const r = record(pool)
      const c = await pool.connect()
      const pid = (c as unknown as { processID: number }).processID
      c.release()
      const removed = nextEvent(pool, 'remove')
      await cluster.get().primary.query('SELECT pg_terminate_backend($1)', [pid])
      await removed
      r.counts('after kill')
      const res = await pool.query('SELECT 1 AS ok')
      r.note(`next query ok=${res.rows[0].ok}`)
      await pool.end()
      await r.allRemoved()
      return r.trace
    })
    assert.ok(trace.some((t) => t.startsWith('error c1 terminating connection due to administrator command')), trace.join('\n'))
    assert.ok(trace.includes('after kill: total=0 idle=0 waiting=0 expired=0'))
    assert.ok(trace.includes('next query ok=1'))
  })

  it('release(err) and release(true) destroy the client; double release throws', async () => {
    const trace = await same(async (make) => {
      const pool = make(base())
      const r = record(pool)
      const a = await pool.connect()
      let removed = nextEvent(pool, 'remove')
      a.release(new Error('broken'))
      await removed
      const b = await pool.connect()
      removed = nextEvent(pool, 'remove')
      b.release(true)
      await removed
      const c = await pool.connect()
      c.release()
      try {
        c.release()
      } catch (err) {
        r.note(`double release: ${(err as Error).message}`)
      }
      r.counts('end')
      await pool.end()
      await r.allRemoved()
      return r.trace
    })
    assert.ok(trace.includes('release c1 err=broken'))
    assert.ok(trace.includes('remove c1') && trace.includes('remove c2'))
    assert.ok(trace.includes('double release: Release called on client which has already been released to the pool.'))
  })

  it('callback forms of connect and query, and query config objects', async () => {
    const trace = await same(async (make) => {
      const pool = make(base())
      const r = record(pool)
      await new Promise<void>((resolve) => {
        pool.connect((err, client, done) => {
          r.note(`connect cb err=${String(err)} client=${client ? r.id(client) : 'none'}`)
          client!.query('SELECT 2 AS n', (qerr: Error | null, res: pg.QueryResult) => {
            r.note(`client.query cb n=${res.rows[0].n} err=${String(qerr)}`)
            done()
            resolve()
          })
        })
      })
      await new Promise<void>((resolve) =>
        pool.query('SELECT 3 AS n', (err: Error | undefined, res: pg.QueryResult) => {
          r.note(`query(text, cb) n=${res.rows[0].n}`)
          resolve()
        })
      )
      await new Promise<void>((resolve) =>
        pool.query('SELECT $1::int AS n', [4], (err: Error | undefined, res: pg.QueryResult) => {
          r.note(`query(text, values, cb) n=${res.rows[0].n}`)
          resolve()
        })
      )
      const res = await pool.query({ text: 'SELECT $1::int AS n', values: [5], rowMode: 'array' })
      r.note(`query(config) rows=${JSON.stringify(res.rows)}`)
      await pool.query('SELECT nope').catch((err: Error & { code?: string }) => r.note(`sql error code=${err.code}`))
      await new Promise<void>((resolve) =>
        (pool.query as unknown as (f: (err: Error) => void) => void)((err) => {
          r.note(`function as query: ${err.message}`)
          resolve()
        })
      )
      await pool.end()
      await r.allRemoved()
      return r.trace
    })
    assert.ok(trace.includes('query(config) rows=[[5]]'))
    assert.ok(trace.includes('sql error code=42703'))
    assert.ok(trace.some((t) => t.startsWith('function as query: Passing a function')))
  })

  it('ending: idle clients removed, end twice and use after end fail the same way', async () => {
    const trace = await same(async (make) => {
      const pool = make(base())
      const r = record(pool)
      const a = await pool.connect()
      const b = await pool.connect()
      a.release()
      b.release()
      await pool.end()
      await r.allRemoved()
      r.counts('ended')
      r.note(`ending=${pool.ending} ended=${pool.ended}`)
      await pool.end().catch((err: Error) => r.note(`end again: ${err.message}`))
      await pool.connect().catch((err: Error) => r.note(`connect after end: ${err.message}`))
      await pool.query('SELECT 1').catch((err: Error) => r.note(`query after end: ${err.message}`))
      return r.trace
    }, { ordered: false })
    assert.equal(trace.filter((t) => t.startsWith('remove')).length, 2)
    assert.ok(trace.includes('end again: Called end on pool more than once'))
    assert.ok(trace.includes('connect after end: Cannot use a pool after calling end on the pool'))
  })

  it('options, counters and instanceof are pg.Pool\'s', async () => {
    const pool = new Pool({ ...base(), max: 3, guard: { keepAliveIdleMs: 2000 } })
    assert.ok(pool instanceof pg.Pool)
    assert.equal(pool.options.max, 3)
    assert.equal(pool.options.idleTimeoutMillis, 10000)
    assert.equal((pool.options as unknown as Record<string, unknown>).guard, undefined, 'guard options are not passed to pg')
    assert.equal(Object.keys(pool.options).includes('password'), false, 'password stays non-enumerable as in pg-pool')
    assert.equal(pool.guard.options.keepAliveIdleMs, 2000)
    await pool.end()
  })
})

/** A TCP server that accepts connections and never says a word: pg's connect hangs until its timeout. */
async function silentServer(): Promise<{ server: Server; port: number; sockets: Socket[] }> {
  const sockets: Socket[] = []
  const server = createServer((s) => sockets.push(s))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return { server, port: (server.address() as { port: number }).port, sockets }
}
