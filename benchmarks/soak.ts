/**
 * Soak: 8 workers through a guarded pool and 8 through a plain pg.Pool, beside each other on one server,
 * with a 5 s fault every 30 s, alternating an iptables blackhole (DROP), a reset (REJECT with RST) and a
 * frozen server (SIGSTOP). Per fault and pool: time to the first error, the longest any query was held, and
 * the time from the heal to full throughput (a 250 ms bucket at >= 80 % of the pre-fault median); heap, RSS
 * and open fds over time; queries still unsettled at the end.
 *
 *   node --expose-gc --import tsx benchmarks/soak.ts [--short]    (10 min; --short / --smoke: 1 fault)
 * Without root the kernel faults are skipped (said so) and every fault is a frozen server.
 */
import { readdirSync } from 'node:fs'
import pg from 'pg'
import { Pool } from '../src/index'
import { startCluster } from '../src/testing/cluster'
import { blackhole, kernelFaultsUnavailable, reject } from '../src/testing/kernel-faults'
import { runMain } from './lib/main'

const short = process.argv.includes('--short') || process.argv.includes('--smoke')
const CYCLE_MS = short ? 8_000 : 30_000
const FAULT_MS = 5_000
const FAULTS = short ? 1 : 20
const BUCKET_MS = 250

type Kind = 'blackhole' | 'reset' | 'frozen'

interface Q { start: number; end: number; ok: boolean }

/**
 * Keeps what the report needs and little else, so the benchmark's own memory stays flat: successes as
 * counts per 250 ms bucket, failures, and queries that took over 100 ms.
 */
class Load {
  readonly failures: number[] = []
  readonly slow: Q[] = []
  readonly open = new Map<number, number>()
  private readonly okBuckets = new Map<number, number>()
  private seq = 0
  private stopping = false
  private workers: Promise<void>[] = []
  constructor(readonly name: string, private readonly pool: pg.Pool) {
    pool.on('error', () => {})
  }
  start(n: number): void {
    this.workers = Array.from({ length: n }, async () => {
      while (!this.stopping) {
        const id = this.seq++
        const start = Date.now()
        this.open.set(id, start)
        const ok = await this.pool.query('SELECT 1').then(() => true, () => false)
        this.open.delete(id)
        const end = Date.now()
        if (ok) {
          const b = Math.floor(end / BUCKET_MS)
          this.okBuckets.set(b, (this.okBuckets.get(b) ?? 0) + 1)
        } else this.failures.push(end)
        if (end - start > 100) this.slow.push({ start, end, ok })
        if (!ok) await new Promise((r) => setTimeout(r, 20))
      }
    })
  }
  /** Stops the workers; those still hung after `graceMs` are counted as unsettled. */
  async stop(graceMs: number): Promise<number> {
    this.stopping = true
    await Promise.race([Promise.all(this.workers), new Promise((r) => setTimeout(r, graceMs).unref())])
    return this.open.size
  }
  okPerBucket(from: number, to: number): number[] {
    const out: number[] = []
    for (let b = Math.ceil(from / BUCKET_MS); (b + 1) * BUCKET_MS <= to; b++) out.push(this.okBuckets.get(b) ?? 0)
    return out
  }
  /** The longest any query overlapping [from, to) was held within it. */
  heldMs(from: number, to: number): number {
    let held = 0
    for (const q of this.slow) if (q.end >= from && q.start < to) held = Math.max(held, Math.min(q.end, to) - Math.max(q.start, from))
    for (const st of this.open.values()) held = Math.max(held, to - Math.max(st, from))
    return held
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0
const sec = (ms: number | undefined): string => (ms === undefined ? 'never' : `${(ms / 1000).toFixed(2)} s`)
const fds = (): number => readdirSync('/proc/self/fd').length

async function main(): Promise<void> {
  const kernelWhy = kernelFaultsUnavailable()
  const c = await startCluster({ primaryHost: '127.0.13.2' })
  const guarded = new Pool({ ...c.config, max: 8 })
  const plain = new pg.Pool({ ...c.config, max: 8 })
  const loads = [new Load('pg-pool-guard', guarded), new Load('pg.Pool', plain)]
  const rows: string[] = []
  const mem: string[] = []
  const sample = (t: number): void => {
    ;(globalThis as { gc?: () => void }).gc?.()
    const m = process.memoryUsage()
    mem.push(`| ${(t / 1000).toFixed(0)} s | ${(m.heapUsed / 2 ** 20).toFixed(1)} MiB | ${(m.rss / 2 ** 20).toFixed(0)} MiB | ${fds()} | ${guarded.totalCount} / ${plain.totalCount} |`)
  }
  try {
    for (const l of loads) l.start(8)
    const t0 = Date.now()
    await new Promise((r) => setTimeout(r, short ? 3000 : 10_000)) // warm up, and the baseline
    const baseline = loads.map((l) => median(l.okPerBucket(Date.now() - 2000, Date.now())))
    sample(Date.now() - t0)
    const kinds: Kind[] = kernelWhy ? ['frozen'] : ['blackhole', 'reset', 'frozen']
    for (let i = 0; i < FAULTS; i++) {
      const kind = kinds[i % kinds.length]
      const cycleStart = Date.now()
      let heal: () => Promise<void>
      if (kind === 'frozen') {
        c.primary.freeze()
        heal = async () => c.primary.thaw()
      } else {
        const f = await (kind === 'blackhole' ? blackhole : reject)(c.primary.host, { port: c.port })
        heal = () => f.remove()
      }
      const faultAt = Date.now()
      await new Promise((r) => setTimeout(r, FAULT_MS))
      await heal()
      const healedAt = Date.now()
      await new Promise((r) => setTimeout(r, Math.max(0, CYCLE_MS - (Date.now() - cycleStart))))
      const end = Date.now()
      loads.forEach((l, k) => {
        const failed = l.failures.find((t) => t >= faultAt) // in time order
        const held = l.heldMs(faultAt, end)
        const buckets = l.okPerBucket(healedAt, end)
        const full = buckets.findIndex((n) => n >= 0.8 * baseline[k])
        const errors = l.failures.filter((t) => t >= faultAt && t < end).length
        const ok = buckets.reduce((a, b) => a + b, 0)
        rows.push(`| ${i + 1} | ${kind} | ${l.name} | ${sec(failed === undefined ? undefined : failed - faultAt)} | ${sec(held)} | ${full < 0 ? `not within ${sec(end - healedAt)}` : sec(full * BUCKET_MS)} | ${errors} | ${ok} |`)
      })
      if ((i + 1) % 2 === 0 || i === FAULTS - 1) sample(Date.now() - t0)
    }
    const unsettled = await Promise.all(loads.map((l) => l.stop(short ? 2000 : 10_000)))
    console.log(`${FAULTS} faults of ${FAULT_MS / 1000} s, one every ${CYCLE_MS / 1000} s${kernelWhy ? ` (kernel faults skipped: ${kernelWhy}; all frozen)` : ', alternating blackhole, reset and frozen'}; 8 workers per pool, \`SELECT 1\` in a loop; baseline ${baseline.map((b, k) => `${loads[k].name} ${b * (1000 / BUCKET_MS)} queries/s`).join(', ')}.`)
    console.log('')
    console.log('| fault | kind | pool | first error after | longest held | heal → full throughput | errors | ok queries after heal |')
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- |')
    for (const r of rows) console.log(r)
    console.log('')
    console.log(`Unsettled at the end (still waiting after the workers were stopped): pg-pool-guard ${unsettled[0]}, pg.Pool ${unsettled[1]}.`)
    console.log('')
    console.log('| t | heap (after GC) | RSS | open fds | sockets (guarded / plain) |')
    console.log('| --- | --- | --- | --- | --- |')
    for (const m of mem) console.log(m)
  } finally {
    c.primary.thaw()
    await Promise.race([Promise.allSettled([guarded.end(), plain.end()]), new Promise((r) => setTimeout(r, 5000).unref())])
    await c.stop()
  }
}

runMain(main)
