import pg from 'pg'
import { execFileSync } from 'node:child_process'
import { Pool } from '../dist/index.js'
import { startCluster } from '../dist/testing/index.js'
async function round(pool: pg.Pool, ms: number): Promise<[number, number]> {
  let n = 0
  const until = performance.now() + ms
  const c0 = process.cpuUsage()
  await Promise.all(Array.from({ length: 8 }, async () => { while (performance.now() < until) { await pool.query('SELECT 1'); n++ } }))
  const c = process.cpuUsage(c0)
  return [(c.user + c.system) / n, n]
}
async function main() {
  const cluster = await startCluster({ primaryHost: '127.0.24.30' })
  try { execFileSync('taskset', ['-a', '-p', '2', String(cluster.primary.pid)], { stdio: 'ignore' }); execFileSync('taskset', ['-a', '-p', '1', String(process.pid)], { stdio: 'ignore' }) } catch {}
  const variants: Record<string, pg.Pool> = {
    plainA: new pg.Pool({ ...cluster.config, max: 8 }),
    plainB: new pg.Pool({ ...cluster.config, max: 8 }),
    guard: new Pool({ ...cluster.config, max: 8 }),
    guardNoCheckout: new Pool({ ...cluster.config, max: 8, guard: { checkoutCheck: false } }),
  }
  const res: Record<string, number[]> = {}
  for (const [k, p] of Object.entries(variants)) { await round(p, 300); res[k] = [] }
  const R = Number(process.argv[2] ?? 12)
  for (let i = 0; i < R; i++) for (const [k, p] of Object.entries(variants)) res[k].push((await round(p, 600))[0])
  const med = (x: number[]) => [...x].sort((p, q) => p - q)[Math.floor(x.length / 2)]
  const base = med(res.plainA)
  for (const [k, v] of Object.entries(res)) console.log(k.padEnd(16), med(v).toFixed(2), 'us/q', (med(v) / base).toFixed(3))
  const g = (variants.guard as unknown as { guard: { stats(): { passMs: number; passes: number } } }).guard.stats()
  console.log('guard passes', g.passes, 'passMs', g.passMs.toFixed(1))
  for (const p of Object.values(variants)) await p.end()
  await cluster.stop()
}
main()
