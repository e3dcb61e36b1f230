/**
 * Heap per pooled connection, with and without the guard: 50 connections opened and kept idle, heap
 * measured after a full GC before and after. Run with --expose-gc (run-all does).
 *
 *   node --expose-gc --import tsx benchmarks/memory.ts [--smoke]
 */
import pg from 'pg'
import { Pool } from '../src/index'
import { startCluster } from '../src/testing/cluster'
import { runMain } from './lib/main'

const smoke = process.argv.includes('--smoke')
const N = smoke ? 10 : 100

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc
  if (!g) throw new Error('run with --expose-gc')
  for (let i = 0; i < 3; i++) g()
}

/**
 * Heap with N idle connections open minus the heap just before the pool was made (both after a full GC).
 * Each run ends by waiting until every connection is closed, so the next baseline holds no leftovers.
 */
async function perConnection(make: () => pg.Pool): Promise<number> {
  await new Promise((r) => setTimeout(r, 200))
  gc()
  const before = process.memoryUsage().heapUsed
  const pool = make()
  let removed = 0
  pool.on('remove', () => removed++)
  const clients = await Promise.all(Array.from({ length: N }, () => pool.connect()))
  for (const c of clients) c.release()
  await new Promise((r) => setTimeout(r, 600)) // a few guard passes, so its per-socket memory exists
  gc()
  const open = process.memoryUsage().heapUsed
  await pool.end()
  while (removed < N) await new Promise((r) => setTimeout(r, 10))
  return (open - before) / N
}

async function main(): Promise<void> {
  const cluster = await startCluster({ primaryHost: '127.0.0.34', settings: { max_connections: 300 } })
  try {
    const cfg = { ...cluster.config, max: N, idleTimeoutMillis: 0 }
    const runs: { plain: number[]; guarded: number[] } = { plain: [], guarded: [] }
    await perConnection(() => new Pool(cfg)) // warm up: JIT, module state, the first guard's statics
    for (let i = 0; i < (smoke ? 1 : 3); i++) {
      runs.plain.push(await perConnection(() => new pg.Pool(cfg)))
      runs.guarded.push(await perConnection(() => new Pool(cfg)))
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
    const a = median(runs.plain)
    const b = median(runs.guarded)
    console.log(`${N} idle connections: heap (after a full GC) with them open minus just before the pool was made; median of ${runs.plain.length} runs.\n`)
    console.log('| pool | heap per connection | guard overhead per connection |')
    console.log('| --- | --- | --- |')
    console.log(`| pg.Pool | ${(a / 1024).toFixed(1)} KiB | - |`)
    console.log(`| pg-pool-guard | ${(b / 1024).toFixed(1)} KiB | ${((b - a) / 1024).toFixed(1)} KiB |`)
  } finally {
    await cluster.stop()
  }
}

runMain(main)
