/**
 * Cost of one guard pass with 10 pooled sockets while the host holds 1k, 10k and 20k other sockets:
 * the per-tick TCP_INFO pass vs reading /proc/net/tcp{,6}, and the guard's CPU at its default cadence.
 * Targets (issue 3): per-tick pass <= 1 ms at 20k foreign sockets; guard CPU <= 0.1 % of a core.
 *
 *   node --import tsx benchmarks/guard-pass.ts [--smoke]
 */
import pg from 'pg'
import { Pool } from '../src/index'
import { readTcpTable } from '../src/kernel/reader'
import { startCluster } from '../src/testing/cluster'
import { socketCrowd } from './lib/crowd'
import { runMain } from './lib/main'

const smoke = process.argv.includes('--smoke')

function timeIt(n: number, fn: () => void): number {
  fn() // warm
  const t = performance.now()
  for (let i = 0; i < n; i++) fn()
  return (performance.now() - t) / n
}

async function cpuOver(ms: number): Promise<number> {
  const u0 = process.cpuUsage()
  await new Promise((r) => setTimeout(r, ms))
  const u = process.cpuUsage(u0)
  return (u.user + u.system) / 1000 / ms // fraction of one core
}

async function main(): Promise<void> {
  const cluster = await startCluster({ primaryHost: '127.0.0.31' })
  const rows: string[] = []
  try {
    for (const foreign of smoke ? [200] : [1000, 10_000, 20_000]) {
      const crowd = await socketCrowd(foreign)
      try {
        const pool = new Pool({ ...cluster.config, max: 10, guard: { checkIntervalMs: 0 } })
        const held = await Promise.all(Array.from({ length: 10 }, () => pool.connect()))
        // In use, each with a query in flight: the classifier runs in full (the idle fast path is cheaper).
        const sleeping = held.map((c) => c.query('SELECT pg_sleep(600)').catch(() => {}))
        const tableRows = readTcpTable().rows.length
        const tcpInfoPass = timeIt(smoke ? 20 : 500, () => pool.guard.check())
        const procRead = timeIt(smoke ? 3 : 20, () => readTcpTable())
        const crossPass = timeIt(smoke ? 3 : 20, () => pool.guard.check({ crossCheck: true }))
        for (const c of held) c.release(true)
        await Promise.all(sleeping)
        rows.push(
          `| ${foreign} | ${tableRows} | ${(tcpInfoPass * 1000).toFixed(0)} µs | ${procRead.toFixed(1)} ms | ${crossPass.toFixed(1)} ms |`
        )
        await pool.end()
      } finally {
        crowd.stop()
      }
    }
    console.log('Guard pass cost, 10 pooled sockets (mean per pass)\n')
    console.log('| foreign sockets on host | rows in /proc/net/tcp{,6} | TCP_INFO pass (per tick) | /proc read + full parse | pass with /proc cross-check (own inodes only) |')
    console.log('| --- | --- | --- | --- | --- |')
    for (const r of rows) console.log(r)

    // CPU at the default cadence (250 ms TCP_INFO ticks, /proc every 30 s), with the largest crowd, idle pool.
    const foreign = smoke ? 200 : 20_000
    const crowd = await socketCrowd(foreign)
    try {
      const windowMs = smoke ? 1000 : 180_000
      const measure = async (pool: pg.Pool): Promise<number> => {
        const held = await Promise.all(Array.from({ length: 10 }, () => pool.connect()))
        for (const c of held) c.release()
        const cpu = await cpuOver(windowMs)
        await pool.end()
        return cpu
      }
      const plain = await measure(new pg.Pool({ ...cluster.config, max: 10, idleTimeoutMillis: 0 }))
      const guardedPool = new Pool({ ...cluster.config, max: 10, idleTimeoutMillis: 0 })
      const guarded = await measure(guardedPool)
      const s = guardedPool.guard.stats()
      const passMs = (s.passMs - s.procScanMs) / Math.max(1, s.passes)
      const scanMs = s.procScans ? s.procScanMs / s.procScans : 0
      const passesPerS = s.passes / (windowMs / 1000)
      // The cross-check runs every procScanIntervalMs (30 s), but never sooner than 3000 x its own cost.
      const scanEveryS = Math.max(30, (3000 * scanMs) / 1000)
      const steady = (passesPerS * passMs) / 10 + scanMs / (scanEveryS * 10)
      console.log(
        `\nCPU, idle pool of 10, ${foreign} foreign sockets, default cadence, over ${windowMs / 1000} s: pg.Pool process ` +
          `${(plain * 100).toFixed(3)} %, guarded process ${(guarded * 100).toFixed(3)} % of a core. The guard's own timed work: ` +
          `${s.passes} passes of ${passMs.toFixed(2)} ms (${passesPerS.toFixed(1)}/s: an idle pool is looked at once a second), ` +
          `${s.procScans} /proc cross-check of ${scanMs.toFixed(0)} ms = ${((s.passMs / windowMs) * 100).toFixed(3)} % over the window; ` +
          `in steady state (a cross-check every ${scanEveryS.toFixed(0)} s): ${steady.toFixed(3)} % of a core.`
      )
    } finally {
      crowd.stop()
    }
  } finally {
    await cluster.stop()
  }
}

runMain(main)
