/**
 * Overhead of the guard on the hot path: throughput, p50/p99 latency and client CPU per query (user +
 * system of this process, µs) of `SELECT 1` and a small INSERT, 8 workers, guarded pool vs plain pg.Pool on
 * the same server in the same run, rounds alternating (plain, guarded, plain, guarded, ...) so that drift
 * hits both. Targets (issue 7, issue 13): throughput >= 0.98 of pg.Pool, CPU per query within ~2 %. And a
 * transaction (BEGIN, INSERT, COMMIT on one client) beside a guarded pool with resolveInDoubt, whose cost
 * is one more statement written behind the INSERT (the transaction id) and a look at each message.
 *
 *   node --import tsx benchmarks/overhead.ts [--smoke]      (PGG_BENCH_HOST: another loopback address)
 */
import { execFileSync } from 'node:child_process'
import pg from 'pg'
// The built package, as users run it (tsx's transform of src/ adds helper calls of its own): npm run bench builds first.
import { Pool } from '../dist/index.js'
import { startCluster } from '../src/testing/cluster'
import { runMain } from './lib/main'

const smoke = process.argv.includes('--smoke')
const ROUNDS = smoke ? 1 : 40
const ROUND_MS = smoke ? 500 : 750
const WORKERS = 8

interface Result { queries: number; ms: number; latencies: number[]; cpuUs: number }

type Work = (pool: pg.Pool) => Promise<unknown>

async function round(pool: pg.Pool, work: Work): Promise<Result> {
  const latencies: number[] = []
  const until = performance.now() + ROUND_MS
  const started = performance.now()
  const cpu0 = process.cpuUsage()
  await Promise.all(
    Array.from({ length: WORKERS }, async () => {
      while (performance.now() < until) {
        const t = performance.now()
        await work(pool)
        latencies.push(performance.now() - t)
      }
    })
  )
  const cpu = process.cpuUsage(cpu0)
  return { queries: latencies.length, ms: performance.now() - started, latencies, cpuUs: cpu.user + cpu.system }
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]
}

async function main(): Promise<void> {
  const cluster = await startCluster({ primaryHost: process.env.PGG_BENCH_HOST ?? '127.0.0.33' })
  // Client and server on separate cores where possible: on 2 cores they otherwise fight, and the noise
  // (rounds differing by 10 %) swamps what is measured.
  let pinned = false
  try {
    execFileSync('taskset', ['-a', '-p', '2', String(cluster.primary.pid)], { stdio: 'ignore' })
    execFileSync('taskset', ['-a', '-p', '1', String(process.pid)], { stdio: 'ignore' })
    pinned = true
  } catch {
    // no taskset, or one core: measure as is
  }
  await cluster.primary.query('CREATE TABLE bench (id bigserial PRIMARY KEY, v int NOT NULL, note text NOT NULL)')
  const plain = new pg.Pool({ ...cluster.config, max: WORKERS })
  const guarded = new Pool({ ...cluster.config, max: WORKERS })
  const inDoubt = new Pool({ ...cluster.config, max: WORKERS, guard: { resolveInDoubt: true, poolName: 'in-doubt' } })
  const transaction: Work = async (pool) => {
    const client = await pool.connect()
    try {
      await client.query('BEGIN')
      await client.query('INSERT INTO bench (v, note) VALUES ($1, $2)', [42, 'order placed'])
      await client.query('COMMIT')
    } finally {
      client.release()
    }
  }
  const workloads: [string, Work, [string, pg.Pool][]][] = [
    ['SELECT 1', (pool) => pool.query('SELECT 1'), [['pg-pool-guard', guarded]]],
    ['INSERT (1 row)', (pool) => pool.query('INSERT INTO bench (v, note) VALUES ($1, $2)', [42, 'order placed']), [['pg-pool-guard', guarded]]],
    ['transaction (BEGIN, INSERT, COMMIT)', transaction, [['pg-pool-guard', guarded], ['pg-pool-guard, resolveInDoubt', inDoubt]]],
  ]
  console.log(
    `8 workers, ${ROUNDS} alternating rounds of ${ROUND_MS / 1000} s per pool and query; ${pinned ? 'client pinned to CPU 0, PostgreSQL to CPU 1' : 'client and server share the cores'}. ` +
      'Ratios are medians of the per-round ratios, with their range: rounds differ by a few % on their own (a shared machine). ' +
      'CPU is process.cpuUsage() user + system of the client process over the round, divided by its queries (it includes the guard\'s timer passes).\n'
  )
  console.log('| work | pool | per second | p50 | p99 | CPU per query (or transaction) | throughput vs pg.Pool: median (range) | CPU vs pg.Pool: median (range) |')
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |')
  try {
    for (const [label, work, contenders] of workloads) {
      for (const p of [plain, ...contenders.map(([, x]) => x)]) await round(p, work) // warm up all
      const acc = { plain: [] as Result[], others: contenders.map(() => [] as Result[]) }
      for (let r = 0; r < ROUNDS; r++) {
        acc.plain.push(await round(plain, work))
        for (const [i, [, pool]] of contenders.entries()) acc.others[i].push(await round(pool, work))
      }
      const summary = (rs: Result[]) => {
        const q = rs.reduce((s, x) => s + x.queries, 0)
        const ms = rs.reduce((s, x) => s + x.ms, 0)
        const lat = rs.flatMap((x) => x.latencies)
        return { qps: (q / ms) * 1000, p50: pct(lat, 50), p99: pct(lat, 99) }
      }
      const medianRange = (xs: number[]): string => {
        const sorted = [...xs].sort((x, y) => x - y)
        return `**${sorted[Math.floor(sorted.length / 2)].toFixed(3)}** (${sorted[0].toFixed(3)}–${sorted[sorted.length - 1].toFixed(3)})`
      }
      const qps = (x: Result): number => x.queries / x.ms
      const cpuPerQuery = (x: Result): number => x.cpuUs / x.queries
      const medianCpu = (rs: Result[]): number => [...rs.map(cpuPerQuery)].sort((x, y) => x - y)[Math.floor(rs.length / 2)]
      const a = summary(acc.plain)
      console.log(`| ${label} | pg.Pool | ${a.qps.toFixed(0)} | ${a.p50.toFixed(3)} ms | ${a.p99.toFixed(3)} ms | ${medianCpu(acc.plain).toFixed(1)} µs | 1.000 | 1.000 |`)
      for (const [i, [name]] of contenders.entries()) {
        const rs = acc.others[i]
        const b = summary(rs)
        const throughput = medianRange(acc.plain.map((p, j) => qps(rs[j]) / qps(p)))
        const cpu = medianRange(acc.plain.map((p, j) => cpuPerQuery(rs[j]) / cpuPerQuery(p)))
        console.log(`| ${label} | ${name} | ${b.qps.toFixed(0)} | ${b.p50.toFixed(3)} ms | ${b.p99.toFixed(3)} ms | ${medianCpu(rs).toFixed(1)} µs | ${throughput} | ${cpu} |`)
      }
    }
    const s = guarded.guard.stats()
    console.log(`\nThe guard ran ${s.passes} passes during the run, ${(s.passMs / s.passes).toFixed(3)} ms each on average.`)
  } finally {
    await plain.end()
    await guarded.end()
    await inDoubt.end()
    await cluster.stop()
  }
}

runMain(main)
