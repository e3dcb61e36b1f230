/**
 * Overhead of the guard on the hot path: throughput and p50/p99 latency of `SELECT 1` and a small INSERT,
 * 8 workers, guarded pool vs plain pg.Pool on the same server in the same run, rounds alternating
 * (plain, guarded, plain, guarded, ...) so that drift hits both. Target (issue 7): >= 0.98 of pg.Pool.
 *
 *   node --import tsx benchmarks/overhead.ts [--smoke]
 */
import pg from 'pg'
import { Pool } from '../src/index'
import { startCluster } from '../src/testing/cluster'

const smoke = process.argv.includes('--smoke')
const ROUNDS = smoke ? 1 : 4
const ROUND_MS = smoke ? 500 : 5000
const WORKERS = 8

interface Result { queries: number; ms: number; latencies: number[] }

async function round(pool: pg.Pool, sql: string, params: () => unknown[]): Promise<Result> {
  const latencies: number[] = []
  const until = performance.now() + ROUND_MS
  const started = performance.now()
  await Promise.all(
    Array.from({ length: WORKERS }, async () => {
      while (performance.now() < until) {
        const t = performance.now()
        await pool.query(sql, params())
        latencies.push(performance.now() - t)
      }
    })
  )
  return { queries: latencies.length, ms: performance.now() - started, latencies }
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]
}

async function main(): Promise<void> {
  const cluster = await startCluster({ primaryHost: '127.0.0.33' })
  await cluster.primary.query('CREATE TABLE bench (id bigserial PRIMARY KEY, v int NOT NULL, note text NOT NULL)')
  const plain = new pg.Pool({ ...cluster.config, max: WORKERS })
  const guarded = new Pool({ ...cluster.config, max: WORKERS })
  const workloads: [string, string, () => unknown[]][] = [
    ['SELECT 1', 'SELECT 1', () => []],
    ['INSERT (1 row)', 'INSERT INTO bench (v, note) VALUES ($1, $2)', () => [42, 'order placed']],
  ]
  console.log(`8 workers, ${ROUNDS} alternating rounds of ${ROUND_MS / 1000} s per pool and query; latency per query.\n`)
  console.log('| query | pool | queries/s | p50 | p99 | throughput vs pg.Pool |')
  console.log('| --- | --- | --- | --- | --- | --- |')
  try {
    for (const [label, sql, params] of workloads) {
      for (const p of [plain, guarded]) await round(p, sql, params) // warm up both
      const acc = { plain: [] as Result[], guarded: [] as Result[] }
      for (let r = 0; r < ROUNDS; r++) {
        acc.plain.push(await round(plain, sql, params))
        acc.guarded.push(await round(guarded, sql, params))
      }
      const summary = (rs: Result[]) => {
        const q = rs.reduce((s, x) => s + x.queries, 0)
        const ms = rs.reduce((s, x) => s + x.ms, 0)
        const lat = rs.flatMap((x) => x.latencies)
        return { qps: (q / ms) * 1000, p50: pct(lat, 50), p99: pct(lat, 99) }
      }
      const a = summary(acc.plain)
      const b = summary(acc.guarded)
      console.log(`| ${label} | pg.Pool | ${a.qps.toFixed(0)} | ${a.p50.toFixed(3)} ms | ${a.p99.toFixed(3)} ms | 1.000 |`)
      console.log(`| ${label} | pg-pool-guard | ${b.qps.toFixed(0)} | ${b.p50.toFixed(3)} ms | ${b.p99.toFixed(3)} ms | ${(b.qps / a.qps).toFixed(3)} |`)
    }
    const s = guarded.guard.stats()
    console.log(`\nThe guard ran ${s.passes} passes during the run, ${(s.passMs / s.passes).toFixed(3)} ms each on average.`)
  } finally {
    await plain.end()
    await guarded.end()
    await cluster.stop()
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err)
    process.exit(1)
  }
)
