/**
 * Early warning (issue 13): a host turns slow and lossy — +100 ms on every answer (the kit's latency toxic)
 * and 18 % of the packets to it dropped (iptables statistic match) — for 60 s, under one sequential writer
 * (the dwell-time case) and under 8 writers. Two hosts that both take the writes: two fault proxies on
 * their own loopback addresses in front of one primary (the proxies run in a child process, so this
 * process's CPU is the pools' own). The guarded pool is given both hosts (A first), plain pg.Pool host A.
 * Both pools run side by side under the same fault, with the same settings: max 4, maxLifetimeSeconds 5
 * (routing only places NEW connections; recycling is what moves a pool off a host).
 *
 * Printed: the time from the fault to `degraded` for host A and until the guarded pool holds no connection
 * to A; per pool, the writes' throughput and dwell time (pool.query() called -> settled: pg-pool's queue,
 * a new connection if one is opened, the round trip) before and during the fault; false `degraded`
 * transitions; the guard's CPU at rest (process.cpuUsage over an idle period, the pool open, against a
 * plain pg.Pool at rest in the same run).
 *
 *   node --import tsx benchmarks/early-warning.ts [--smoke|--short]      (full: ~5 min, root for iptables)
 *   node --import tsx benchmarks/early-warning.ts --healthy-minutes 10   (only: false alarms under healthy load)
 */
import pg from 'pg'
import { type HealthTransition, Pool } from '../src/index'
import { startCluster } from '../src/testing/cluster'
import { kernelFaultsUnavailable, loss } from '../src/testing/kernel-faults'
import { childProxies, type ChildProxies } from './lib/proxies'
import { runMain } from './lib/main'

const smoke = process.argv.includes('--smoke') || process.argv.includes('--short')
const healthyArg = process.argv.indexOf('--healthy-minutes')
const HEALTHY_MINUTES = healthyArg >= 0 ? Number(process.argv[healthyArg + 1]) : 0
const WARM_MS = smoke ? 2_000 : 15_000
const FAULT_MS = smoke ? 4_000 : 60_000
const AFTER_MS = smoke ? 1_000 : 15_000
const REST_MS = smoke ? 1_500 : 30_000
const LATENCY_MS = 100
const LOSS = 0.18
const MAX = 4
const LIFETIME_S = 5
const HOSTS = { primary: '127.0.22.1', a: '127.0.22.2', b: '127.0.22.3' }

interface Q { start: number; end: number; ok: boolean }

/** N sequential writers on a pool; every write's start, end and outcome. */
class Writers {
  readonly qs: Q[] = []
  private stopping = false
  private readonly all: Promise<void>[]
  constructor(pool: pg.Pool, n: number, tag: string) {
    this.all = Array.from({ length: n }, async (_, w) => {
      while (!this.stopping) {
        const start = performance.now()
        let ok = true
        try {
          await pool.query('INSERT INTO ew (pool, writer) VALUES ($1, $2)', [tag, w])
        } catch {
          ok = false
          await new Promise((r) => setTimeout(r, 50))
        }
        this.qs.push({ start, end: performance.now(), ok })
      }
    })
  }
  async stop(): Promise<void> {
    this.stopping = true
    await Promise.all(this.all)
  }
  /** Writes started in [from, to): writes/s (completed ok), dwell p50/p99/max, failures. */
  window(from: number, to: number): { perSec: number; p50: number; p99: number; max: number; failed: number } {
    const qs = this.qs.filter((q) => q.start >= from && q.start < to)
    const dwell = qs.map((q) => q.end - q.start).sort((a, b) => a - b)
    const at = (p: number): number => dwell[Math.min(dwell.length - 1, Math.floor(p * dwell.length))] ?? NaN
    return { perSec: (qs.filter((q) => q.ok).length / (to - from)) * 1000, p50: at(0.5), p99: at(0.99), max: dwell.at(-1) ?? NaN, failed: qs.filter((q) => !q.ok).length }
  }
}

const ms = (v: number): string => (Number.isNaN(v) ? '–' : v < 10 ? `${v.toFixed(1)} ms` : v < 1000 ? `${v.toFixed(0)} ms` : `${(v / 1000).toFixed(2)} s`)
const secs = (v: number | undefined): string => (v === undefined ? 'never' : `${(v / 1000).toFixed(1)} s`)
const sleep = (t: number): Promise<void> => new Promise((r) => setTimeout(r, t))

interface Env {
  config: pg.PoolConfig
  px: ChildProxies
  a: { host: string; port: number }
  b: { host: string; port: number }
}

const guardedPool = (e: Env, extra: pg.PoolConfig = {}): Pool =>
  new Pool({ ...e.config, host: [e.a.host, e.b.host] as never, port: [e.a.port, e.b.port] as never, max: MAX, maxLifetimeSeconds: LIFETIME_S, ...extra })
const plainPool = (e: Env, extra: pg.PoolConfig = {}): pg.Pool => new pg.Pool({ ...e.config, host: e.a.host, port: e.a.port, max: MAX, maxLifetimeSeconds: LIFETIME_S, ...extra })

async function scenario(e: Env, writers: number): Promise<{ rows: string[]; falseAlarms: number }> {
  const guarded = guardedPool(e)
  const plain = plainPool(e)
  for (const p of [guarded, plain]) p.on('error', () => {})
  const A = `${e.a.host}:${e.a.port}`
  const transitions: (HealthTransition & { t: number })[] = []
  guarded.guard.on('health', (t) => transitions.push({ ...t, t: performance.now() }))
  const evictions: string[] = []
  guarded.guard.on('evict', (ev) => evictions.push(ev.reason))
  const onA = (): number => guarded.guard.snapshot().filter((r) => `${r.configuredHost}:${r.configuredPort}` === A).length
  const g = new Writers(guarded, writers, 'guard')
  const p = new Writers(plain, writers, 'plain')
  const started = performance.now()
  await sleep(WARM_MS)
  await e.px.latency(0, LATENCY_MS)
  const fault = await loss(e.a.host, LOSS, { port: e.a.port, direction: 'to' })
  const faultAt = performance.now()
  // Sampled, not awaited on: when the guarded pool last held a connection to A (a measurement, not a sync).
  let lastOnA = faultAt
  const sampler = setInterval(() => {
    if (onA() > 0) lastOnA = performance.now()
  }, 100)
  let healedAt: number
  let leftOnA: number
  try {
    await sleep(FAULT_MS)
    leftOnA = onA()
  } finally {
    clearInterval(sampler)
    await fault.remove()
    await e.px.clear(0)
    healedAt = performance.now()
  }
  await sleep(AFTER_MS)
  await Promise.all([g.stop(), p.stop()])
  await Promise.all([guarded.end(), plain.end()])

  const degraded = transitions.find((t) => t.endpoint === A && t.to === 'degraded' && t.t >= faultAt)
  const healthy = transitions.find((t) => t.endpoint === A && t.to === 'healthy' && t.t >= healedAt)
  const falseAlarms = transitions.filter((t) => t.to === 'degraded' && (t.t < faultAt || t.endpoint !== A)).length
  const row = (name: string, w: Writers, extra: string): string => {
    const h = w.window(started, faultAt)
    const f = w.window(faultAt, healedAt)
    return `| ${writers} | ${name} | ${h.perSec.toFixed(0)} | ${ms(h.p50)} / ${ms(h.p99)} | ${f.perSec.toFixed(1)} | ${ms(f.p50)} | ${ms(f.p99)} | ${ms(f.max)} | ${f.failed} | ${extra} |`
  }
  const off = leftOnA === 0 ? secs(lastOnA - faultAt) : `no (${leftOnA} left)`
  return {
    falseAlarms,
    rows: [
      row('pg-pool-guard (A, B)', g, `degraded ${secs(degraded && degraded.t - faultAt)}${degraded ? ` (${degraded.evidence})` : ''}; off A ${off}; ${healthy ? `healthy ${secs(healthy.t - healedAt)} after the heal` : leftOnA === 0 ? 'A not measured after the heal (no socket left on it: tried again 60 s after last seen degraded)' : 'not healthy again yet'}; evictions ${evictions.length}`),
      row('pg.Pool (A)', p, 'stays on A'),
    ],
  }
}

/** CPU at rest, µs per second of wall time: `MAX` idle connections open, nothing to do. */
async function atRest(pool: pg.Pool): Promise<{ usPerSec: number; passUsPerSec: number }> {
  pool.on('error', () => {})
  const clients = await Promise.all(Array.from({ length: MAX }, () => pool.connect()))
  for (const c of clients) c.release()
  await sleep(smoke ? 500 : 3_000) // monitors started, first passes done
  const guard = (pool as Partial<Pool>).guard
  const pass0 = guard?.stats().passMs ?? 0
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  await sleep(REST_MS)
  const cpu = process.cpuUsage(cpu0)
  const wall = performance.now() - t0
  const passMs = (guard?.stats().passMs ?? 0) - pass0
  await pool.end()
  return { usPerSec: ((cpu.user + cpu.system) / wall) * 1000, passUsPerSec: (passMs * 1e3 / wall) * 1000 }
}

async function healthyOnly(e: Env): Promise<void> {
  const pools = [guardedPool(e), guardedPool(e)]
  const transitions: HealthTransition[] = []
  for (const pool of pools) {
    pool.on('error', () => {})
    pool.guard.on('health', (t) => transitions.push(t))
  }
  const eight = new Writers(pools[0], 8, 'healthy-8')
  const one = new Writers(pools[1], 1, 'healthy-1')
  const t0 = performance.now()
  await sleep(HEALTHY_MINUTES * 60_000)
  await Promise.all([eight.stop(), one.stop()])
  const w8 = eight.window(t0, performance.now())
  const w1 = one.window(t0, performance.now())
  await Promise.all(pools.map((p) => p.end()))
  console.log(`Healthy load for ${HEALTHY_MINUTES} min on two two-host guarded pools side by side (8 writers: ${w8.perSec.toFixed(0)} writes/s, ` +
    `dwell p99 ${ms(w8.p99)}; 1 writer: ${w1.perSec.toFixed(0)} writes/s, dwell p99 ${ms(w1.p99)}): ` +
    `**${transitions.filter((t) => t.to === 'degraded').length} false \`degraded\`** ` +
    `(${transitions.map((t) => `${t.endpoint} ${t.to}: ${t.evidence}`).join('; ') || 'no transition at all'}).`)
}

async function main(): Promise<void> {
  const why = kernelFaultsUnavailable()
  if (why) {
    console.log(`skipped: ${why}`)
    return
  }
  const cluster = await startCluster({ primaryHost: HOSTS.primary })
  const px = await childProxies([HOSTS.a, HOSTS.b].map((listenHost) => ({ listenHost, target: { host: cluster.primary.host, port: cluster.port } })))
  const e: Env = { config: cluster.config as pg.PoolConfig, px, a: { host: HOSTS.a, port: px.ports[0] }, b: { host: HOSTS.b, port: px.ports[1] } }
  try {
    await cluster.primary.query('CREATE TABLE ew (id bigserial PRIMARY KEY, pool text NOT NULL, writer int NOT NULL, at timestamptz NOT NULL DEFAULT now())')
    if (HEALTHY_MINUTES > 0) return await healthyOnly(e)
    const rows: string[] = []
    let falseAlarms = 0
    for (const writers of [1, 8]) {
      const r = await scenario(e, writers)
      rows.push(...r.rows)
      falseAlarms += r.falseAlarms
    }
    const plainRest = await atRest(plainPool(e, { idleTimeoutMillis: 0 }))
    const guardRest = await atRest(guardedPool(e, { idleTimeoutMillis: 0 }))
    console.log(
      `Host A: +${LATENCY_MS} ms on every answer (latency toxic, downstream) and ${LOSS * 100} % of the packets to it dropped (iptables), ` +
        `${FAULT_MS / 1000} s, after ${WARM_MS / 1000} s of healthy load. Both pools side by side, max ${MAX}, maxLifetimeSeconds ${LIFETIME_S}; ` +
        'the guarded pool has hosts A and B (A first), pg.Pool host A. Dwell = pool.query() called -> settled (queue + connect + round trip), ' +
        'writes started in the window. The client\'s TCP_INFO sees the loss on its leg to the proxy (retransmissions), not the proxy\'s latency ' +
        '(the proxy ACKs): `degraded` here comes from the retransmitted share.\n'
    )
    console.log(`| writers | pool | healthy: writes/s | healthy dwell p50 / p99 | fault: writes/s | dwell p50 | p99 | max | failed | routing |`)
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |')
    for (const r of rows) console.log(r)
    const pctCore = (usPerSec: number): string => `${(usPerSec / 1e4).toFixed(3)} %`
    console.log(
      `\nFalse \`degraded\` (before the fault, or on host B): ${falseAlarms}, over ${(2 * (WARM_MS + FAULT_MS + AFTER_MS)) / 1000} s of load ` +
        `(the 10-minute check is \`--healthy-minutes 10\`).\n` +
        `CPU at rest over ${REST_MS / 1000} s, ${MAX} idle connections (process.cpuUsage, the whole process): pg.Pool ${pctCore(plainRest.usPerSec)} of a core, ` +
        `pg-pool-guard with two hosts (timer passes and the host monitors) ${pctCore(guardRest.usPerSec)}; difference ${pctCore(guardRest.usPerSec - plainRest.usPerSec)}. ` +
        `The guard's timed kernel passes alone: ${pctCore(guardRest.passUsPerSec)}.`
    )
  } finally {
    px.stop()
    await cluster.stop()
  }
}

runMain(main)
