/**
 * Every write's fate, under real faults (root: iptables). Eight writers — four autocommit INSERTs, four
 * explicit transactions (BEGIN, two INSERTs, COMMIT) — on a pool with resolveInDoubt. The kit holds COMMITs
 * in flight (synchronous_commit = remote_apply on a standby whose replay is paused), so the fault lands
 * while they wait: in-doubt commits on demand.
 *   1. The primary blackholed, then healed and the commits released: they commit on the server while
 *      their clients are gone.
 *   2. The primary blackholed, the synchronous standby promoted (the promotion ends the pause: what it
 *      received is replayed): the answer is on the new primary.
 * Checked after each: every evicted operation carries an outcome; no 'rolled-back' or 'not-sent' write is on
 * the server; every acknowledged write is; every resolveOutcome() answer matches the server ('committed'
 * present, 'rolled-back' absent), and at least 90 % of the explicit transactions' in-doubt COMMITs are
 * resolved within 5 s of the heal (or the promotion).
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { ConnectionEvictedError, Pool, type PoolGuardError, type ResolvedOutcome } from '../../src/index'
import { type Cluster, startCluster } from '../../src/testing/cluster'
import { blackhole, type KernelFault } from '../../src/testing/kernel-faults'
import { kernelSkip, until } from '../helpers'

const skip = kernelSkip('test/kernel/in-doubt.test.ts')
const RESOLVED_SHARE = 0.9
const RESOLVE_WITHIN_MS = 5000

const clusters: Cluster[] = []
const faults: KernelFault[] = []
after(async () => {
  for (const f of faults) await f.remove()
  for (const c of clusters) await c.stop()
})

interface Op {
  ids: string[]
  explicit: boolean
  acked: boolean
  error?: PoolGuardError & { outcome?: string }
}

/** Writers 0-3 autocommit, 4-7 explicit transactions; every operation recorded with its fate. */
function writers(pool: Pool): { ops: Op[]; stop(): Promise<void>; acked(n: number): Promise<void> } {
  const ops: Op[] = []
  let stopping = false
  const run = async (w: number): Promise<void> => {
    for (let seq = 0; !stopping; seq++) {
      const id = `w${w}-${seq}`
      const explicit = w >= 4
      const op: Op = { ids: explicit ? [id, `${id}-2`] : [id], explicit, acked: false }
      ops.push(op)
      try {
        if (explicit) {
          const client = await pool.connect()
          try {
            await client.query('BEGIN')
            await client.query('INSERT INTO fate_w (id) VALUES ($1)', [id])
            await client.query('INSERT INTO fate_w (id) VALUES ($1)', [`${id}-2`])
            await client.query('COMMIT')
            client.release()
          } catch (err) {
            client.release(true)
            throw err
          }
        } else {
          await pool.query('INSERT INTO fate_w (id) VALUES ($1)', [id])
        }
        op.acked = true
      } catch (err) {
        op.error = err as PoolGuardError
        await new Promise((r) => setTimeout(r, 50))
      }
    }
  }
  const running = Array.from({ length: 8 }, (_, w) => run(w))
  return {
    ops,
    stop: async () => {
      stopping = true
      await Promise.all(running)
    },
    acked: (n) => until(() => ops.filter((o) => o.acked).length >= n, `${n} writes acknowledged`, 15_000),
  }
}

/** The checks every scenario shares; returns a summary line. */
async function judge(label: string, ops: Op[], present: Set<string>, answers: Map<Op, { outcome: ResolvedOutcome; ms: number }>): Promise<string> {
  const failed = ops.filter((o) => o.error)
  const evicted = failed.filter((o) => o.error instanceof ConnectionEvictedError)
  for (const o of failed) {
    if (typeof o.error?.code === 'string' && o.error.code.startsWith('PGG_')) assert.ok(o.error.outcome, `${o.error.code} without an outcome`)
  }
  for (const o of failed.filter((x) => x.error?.outcome === 'rolled-back' || x.error?.outcome === 'not-sent')) {
    assert.ok(o.ids.every((id) => !present.has(id)), `${o.error!.outcome} write ${o.ids[0]} is on the server`)
  }
  for (const o of ops.filter((x) => x.acked)) assert.ok(o.ids.every((id) => present.has(id)), `acknowledged write ${o.ids[0]} is missing`)
  for (const [o, a] of answers) {
    if (a.outcome === 'committed') assert.ok(o.ids.every((id) => present.has(id)), `${o.ids[0]} resolved committed but is not on the server`)
    if (a.outcome === 'rolled-back') assert.ok(o.ids.every((id) => !present.has(id)), `${o.ids[0]} resolved rolled-back but is on the server`)
  }
  const inDoubt = [...answers].filter(([o]) => o.explicit)
  const resolved = inDoubt.filter(([, a]) => a.outcome !== 'unknown' && a.ms <= RESOLVE_WITHIN_MS)
  const tally = (xs: (string | undefined)[]): string => JSON.stringify(xs.reduce<Record<string, number>>((m, x) => ({ ...m, [x ?? '?']: (m[x ?? '?'] ?? 0) + 1 }), {}))
  const line =
    `# ${label}: ${ops.filter((o) => o.acked).length} acknowledged; evicted ${tally(evicted.map((o) => o.error!.outcome))}; other errors ${tally(failed.filter((o) => !(o.error instanceof ConnectionEvictedError)).map((o) => `${o.error?.code}/${o.error?.outcome}`))}; ` +
    `in-doubt COMMITs of explicit transactions ${inDoubt.length}, resolved within ${RESOLVE_WITHIN_MS / 1000} s ${resolved.length} (${tally(inDoubt.map(([, a]) => a.outcome))}, slowest ${Math.max(0, ...inDoubt.map(([, a]) => a.ms))} ms); autocommit in doubt ${tally([...answers].filter(([o]) => !o.explicit).map(([, a]) => a.outcome))}`
  console.log(line)
  assert.ok(inDoubt.length > 0, 'the fault landed on COMMITs in flight')
  assert.ok(resolved.length >= Math.ceil(RESOLVED_SHARE * inDoubt.length), `${resolved.length} of ${inDoubt.length} in-doubt COMMITs resolved within ${RESOLVE_WITHIN_MS} ms`)
  return line
}

/** Waits until `n` sessions wait for the standby (their COMMIT is in flight). */
const commitsInFlight = (c: Cluster, n: number): Promise<void> =>
  until(async () => (await c.primary.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event = 'SyncRep'")).rows[0].n >= n, `${n} COMMITs wait for the standby`, 10_000)

const resolveAll = (ops: Op[], since: number): Promise<Map<Op, { outcome: ResolvedOutcome; ms: number }>> =>
  Promise.all(
    ops.filter((o) => o.error instanceof ConnectionEvictedError && o.error.outcome === 'unknown').map(async (o) => {
      const outcome = await (o.error as ConnectionEvictedError).resolveOutcome!({ timeoutMs: 20_000 })
      return [o, { outcome, ms: Date.now() - since }] as const
    })
  ).then((xs) => new Map(xs))

describe('in-doubt writes under real faults, resolveInDoubt', { skip }, () => {
  it('blackhole, then heal: the held COMMITs commit while their clients are gone; the guard finds out which', async () => {
    const c = await startCluster({ standby: true, primaryHost: '127.0.71.2', standbyHost: '127.0.71.3' })
    clusters.push(c)
    await c.primary.query('CREATE TABLE fate_w (id text PRIMARY KEY)')
    const pool = new Pool({ ...c.config, max: 8, guard: { resolveInDoubt: true } })
    pool.on('error', () => {})
    const w = writers(pool)
    await w.acked(50)
    const hold = await c.holdCommits()
    await commitsInFlight(c, 4)
    const fault = await blackhole(c.primary.host, { port: c.port })
    faults.push(fault)
    // Every writer's operation in flight is evicted (a probe finds the host silent).
    const before = w.ops.length
    await until(() => w.ops.slice(0, before).filter((o) => !o.acked && o.error === undefined).length === 0, 'every operation in flight at the fault settled', 20_000)
    await fault.remove()
    const healed = Date.now()
    await hold.release()
    const answers = await resolveAll(w.ops, healed)
    await w.stop()
    const present = new Set((await c.primary.query<{ id: string }>('SELECT id FROM fate_w')).rows.map((r) => r.id))
    await judge('blackhole + heal', w.ops, present, answers)
    await until(async () => (await c.primary.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'")).rows[0].n === 0, 'no orphaned transaction block is left on the server', 10_000)
    await pool.end()
  })

  it('blackhole, then failover to the synchronous standby: the answer is on the new primary', async () => {
    const c = await startCluster({ standby: true, primaryHost: '127.0.72.2', standbyHost: '127.0.72.3' })
    clusters.push(c)
    const [a, b] = c.servers
    await c.primary.query('CREATE TABLE fate_w (id text PRIMARY KEY)')
    await c.caughtUp()
    const pool = new Pool({ ...c.config, host: c.hosts, max: 8, guard: { resolveInDoubt: true, targetSessionAttrs: 'read-write' } })
    pool.on('error', () => {})
    const w = writers(pool)
    await w.acked(50)
    await until(() => pool.guard.topology().hosts.some((h) => h.key.startsWith(b.host) && h.role?.inHotStandby === true), 'the standby is watched')
    const hold = await c.holdCommits()
    await commitsInFlight(c, 4)
    const fault = await blackhole(a.host, { port: c.port })
    faults.push(fault)
    const before = w.ops.length
    await until(() => w.ops.slice(0, before).filter((o) => !o.acked && o.error === undefined).length === 0, 'every operation in flight at the fault settled', 20_000)
    const promoted = Date.now()
    await c.promote(b) // ends the pause: the commit records it received are replayed
    const answers = await resolveAll(w.ops, promoted)
    await w.stop()
    void hold // the old primary stays cut off; its held COMMITs never return
    const present = new Set((await b.query<{ id: string }>('SELECT id FROM fate_w')).rows.map((r) => r.id))
    await judge('failover to the synchronous standby', w.ops, present, answers)
    await pool.end()
  })

  it('a COMMIT lost on the way (the trap): its block left idle in transaction is ended, and the answer is rolled-back', async () => {
    const c = await startCluster({ primaryHost: '127.0.73.2' })
    clusters.push(c)
    await c.primary.query('CREATE TABLE fate_lost (id text PRIMARY KEY)')
    const pool = new Pool({ ...c.config, max: 1, guard: { resolveInDoubt: true } })
    pool.on('error', () => {})
    const client = await pool.connect()
    client.on('error', () => {})
    await client.query('BEGIN')
    await client.query("INSERT INTO fate_lost VALUES ('lost-1')")
    const fault = await blackhole(c.primary.host, { port: c.port })
    faults.push(fault)
    const err = await client.query('COMMIT').then(() => assert.fail('the COMMIT should have been evicted'), (e: unknown) => e as ConnectionEvictedError)
    client.release(true)
    assert.equal(err.outcome, 'unknown')
    // The server never saw the COMMIT: its backend sits idle in the transaction, holding its locks.
    const { rows } = await c.primary.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'idle in transaction'")
    assert.equal(rows[0].n, 1)
    await fault.remove()
    const healed = Date.now()
    const outcome = await err.resolveOutcome!({ timeoutMs: 10_000 })
    const ms = Date.now() - healed
    const present = (await c.primary.query("SELECT count(*)::int AS n FROM fate_lost WHERE id = 'lost-1'")).rows[0].n === 1
    const orphans = (await c.primary.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'idle in transaction'")).rows[0].n
    console.log(`# a COMMIT lost on the way: resolved ${outcome} ${ms} ms after the heal; the row is ${present ? 'there' : 'absent'}; blocks left idle in transaction: ${orphans}`)
    assert.equal(outcome, 'rolled-back')
    assert.equal(present, false)
    assert.equal(orphans, 0)
    await pool.end()
  })
})
