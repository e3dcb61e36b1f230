/**
 * What the checkout check costs: CPU µs per checkout + `SELECT 1` (pool.query, 8 workers, every checkout
 * an idle client) for plain pg.Pool, the guard with `checkoutCheck` off, on (default: clients idle 100 ms
 * or more) and on for every checkout, rounds alternating so that drift hits all four; and the check alone
 * (TCP_INFO glance + rule) on a real pooled socket.
 *
 *   node --import tsx benchmarks/checkout.ts [--smoke]
 */
import { execFileSync } from 'node:child_process'
import pg from 'pg'
import { judgeCheckout } from '../src/judge/checkout-rules'
import { linuxKernel } from '../src/kernel/linux'
import { Pool } from '../src/index'
import { startCluster } from '../src/testing/cluster'
import { runMain } from './lib/main'

const smoke = process.argv.includes('--smoke')
const ROUNDS = smoke ? 1 : 20
const ROUND_MS = smoke ? 300 : 750
const WORKERS = 8

interface Result { queries: number; cpuUs: number; ms: number }

async function round(pool: pg.Pool): Promise<Result> {
  let queries = 0
  const started = performance.now()
  const until = started + ROUND_MS
  const cpu0 = process.cpuUsage()
  await Promise.all(
    Array.from({ length: WORKERS }, async () => {
      while (performance.now() < until) {
        await pool.query('SELECT 1')
        queries++
      }
    })
  )
  const cpu = process.cpuUsage(cpu0)
  return { queries, cpuUs: cpu.user + cpu.system, ms: performance.now() - started }
}

async function main(): Promise<void> {
  const cluster = await startCluster({ primaryHost: '127.0.23.40' })
  let pinned = false
  try {
    execFileSync('taskset', ['-a', '-p', '2', String(cluster.primary.pid)], { stdio: 'ignore' })
    execFileSync('taskset', ['-a', '-p', '1', String(process.pid)], { stdio: 'ignore' })
    pinned = true
  } catch {
    // no taskset, or one core
  }
  const pools: [string, pg.Pool][] = [
    ['pg.Pool', new pg.Pool({ ...cluster.config, max: WORKERS })],
    ['pg-pool-guard, checkoutCheck off', new Pool({ ...cluster.config, max: WORKERS, guard: { checkoutCheck: false } })],
    ['pg-pool-guard, checkoutCheck on, idle >= 100 ms (default)', new Pool({ ...cluster.config, max: WORKERS })],
    ['pg-pool-guard, checkoutCheck on, every checkout', new Pool({ ...cluster.config, max: WORKERS, guard: { checkoutCheckIdleMs: 0 } })],
  ]
  try {
    for (const [, p] of pools) await round(p) // warm up: every pool holds its 8 clients
    const acc = pools.map(() => [] as Result[])
    for (let r = 0; r < ROUNDS; r++) for (const [i, [, p]] of pools.entries()) acc[i].push(await round(p))
    console.log(`8 workers, ${ROUNDS} alternating rounds of ${ROUND_MS / 1000} s per pool; ${pinned ? 'client pinned to CPU 0, PostgreSQL to CPU 1' : 'client and server share the cores'}.\n`)
    console.log('| pool | checkouts + SELECT 1 /s | CPU µs per checkout + query | vs pg.Pool |')
    console.log('| --- | --- | --- | --- |')
    const cpuPer = acc.map((rs) => rs.reduce((s, x) => s + x.cpuUs, 0) / rs.reduce((s, x) => s + x.queries, 0))
    for (const [i, [label]] of pools.entries()) {
      const rs = acc[i]
      const qps = (rs.reduce((s, x) => s + x.queries, 0) / rs.reduce((s, x) => s + x.ms, 0)) * 1000
      console.log(`| ${label} | ${qps.toFixed(0)} | ${cpuPer[i].toFixed(1)} | ${(cpuPer[i] / cpuPer[0]).toFixed(3)} |`)
    }
    console.log(`\nThe check's share: ${(cpuPer[2] - cpuPer[1]).toFixed(2)} µs per checkout by default, ${(cpuPer[3] - cpuPer[1]).toFixed(2)} µs when every checkout is checked (on minus off; rounds differ by a few µs on their own).`)

    // The check alone, on a real pooled socket: one getsockopt(TCP_INFO) and the rule.
    const guarded = pools[3][1] as Pool
    const fd = guarded.guard.snapshot().find((r) => r.fd !== null)?.fd
    if (fd !== undefined && fd !== null && linuxKernel.samplingUnavailable() === null) {
      const n = smoke ? 10_000 : 200_000
      let distrusted = 0
      const t0 = process.cpuUsage()
      for (let i = 0; i < n; i++) if (judgeCheckout(linuxKernel.glance(fd)) !== null) distrusted++
      const t = process.cpuUsage(t0)
      console.log(`The check alone: ${((t.user + t.system) / n).toFixed(2)} µs of CPU per call (${n} calls on one pooled socket, ${distrusted} distrusted).`)
    }
  } finally {
    for (const [, p] of pools) await p.end()
    await cluster.stop()
  }
}

runMain(main)
