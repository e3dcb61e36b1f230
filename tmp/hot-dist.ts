import pg from 'pg'
import { execFileSync } from 'node:child_process'
import { Pool } from '../dist/index.js'
import { startCluster } from '../src/testing/cluster'
const mode = process.argv[2] ?? 'both'
async function round(pool: pg.Pool, ms: number): Promise<number> {
  let n = 0
  const until = performance.now() + ms
  const c0 = process.cpuUsage()
  await Promise.all(Array.from({ length: 8 }, async () => { while (performance.now() < until) { await pool.query('SELECT 1'); n++ } }))
  const c = process.cpuUsage(c0)
  return (c.user + c.system) / n
}
async function main() {
  const cluster = await startCluster({ primaryHost: '127.0.24.30' })
  try { execFileSync('taskset', ['-a', '-p', '2', String(cluster.primary.pid)], { stdio: 'ignore' }); execFileSync('taskset', ['-a', '-p', '1', String(process.pid)], { stdio: 'ignore' }) } catch {}
  const plain = new pg.Pool({ ...cluster.config, max: 8 })
  const guarded = new Pool({ ...cluster.config, max: 8 })
  await round(plain, 300); await round(guarded, 300)
  const a: number[] = [], b: number[] = []
  for (let i = 0; i < Number(process.argv[3] ?? 10); i++) {
    if (mode !== 'guarded') a.push(await round(plain, 700))
    if (mode !== 'plain') b.push(await round(guarded, 700))
  }
  const med = (x: number[]) => [...x].sort((p, q) => p - q)[Math.floor(x.length / 2)]
  if (a.length && b.length) console.log(`plain ${med(a).toFixed(2)} us/q, guarded ${med(b).toFixed(2)} us/q, ratio ${(med(b) / med(a)).toFixed(3)}; per-round ratios ${a.map((x, i) => (b[i] / x).toFixed(3)).join(' ')}`)
  else console.log(`${mode}: ${med(a.length ? a : b).toFixed(2)} us/q`)
  await plain.end(); await guarded.end(); await cluster.stop()
}
main()
