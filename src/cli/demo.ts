/**
 * The demo: what the guard does, live, in one command. Two acts on real PostgreSQL (a primary and a
 * streaming standby each), a guarded pool and a plain pg.Pool side by side, 8 writers each:
 *   1. failover: the primary vanishes (iptables blackhole when root, a userspace blackhole toxic
 *      otherwise) and the standby is promoted;
 *   2. split-brain: the standby is promoted while the old primary stays up and writable;
 *   3. (root) the same behind a virtual address (iptables DNAT, a Kubernetes Service): both pools are given
 *      the one address, which is switched to the promoted standby; open connections stay on the old primary.
 * A per-second timeline, then a comparison. Everything it starts it stops (servers, proxies, rules).
 */
import pg from 'pg'
import { Pool } from '../pool/pool'
import type { EvictionEvent } from '../guard/guard'
import { type Cluster, freePort, startCluster } from '../testing/cluster'
import { blackhole, kernelFaultsUnavailable } from '../testing/kernel-faults'
import { type FaultProxy, faultProxy } from '../testing/proxy'
import { writeLoad, type WriteWorkload } from '../testing/workload'

export interface DemoOptions {
  /** Shorter phases (about 15 s in all), for tests. */
  short?: boolean
  /** 'kernel' needs root; 'toxic' works anywhere. @default kernel when root */
  mode?: 'kernel' | 'toxic'
  out?: (line: string) => void
}

export interface PoolOutcome {
  /** ms from the fault to the first write acknowledged by the new primary; null: none in the window. */
  firstWriteOnNewPrimaryMs: number | null
  /** Writes acknowledged by the old primary after the fault. */
  oldPrimaryWritesAfterFault: number
  /** Guarded pool only: ms from the fault until the guard saw the new primary, and writes sent after that which the old primary acknowledged. */
  guardSawNewPrimaryMs: number | null
  oldPrimaryWritesAfterGuardSaw: number | null
  /** Writes sent before t+1 s and still waiting when the window closed: writers stuck since the fault. */
  hung: number
  errors: number
  errorCodes: Record<string, number>
  evictions: Record<string, number>
  acknowledged: number
}

export interface ActOutcome {
  windowMs: number
  guarded: PoolOutcome
  plain: PoolOutcome
}

export interface DemoSummary {
  mode: 'kernel' | 'toxic'
  metricsUrl: string | null
  failover: ActOutcome
  splitBrain: ActOutcome
  /** Act 3, behind a virtual address; null where it cannot run (not root), with `vipSkipped` saying why. */
  vip: ActOutcome | null
  vipSkipped: string | null
}

interface Side {
  label: string
  pool: pg.Pool
  load: WriteWorkload
  evictions: EvictionEvent[]
  /** When the guard first reported a primary other than the first host (guarded pool only). */
  sawNewPrimaryAt: number | null
}

export async function runDemo(options: DemoOptions = {}): Promise<DemoSummary> {
  const out = options.out ?? ((l: string) => console.log(l))
  const mode = options.mode ?? (kernelFaultsUnavailable() === null ? 'kernel' : 'toxic')
  const steadyMs = options.short ? 1500 : 3000
  const windowMs = options.short ? 5000 : 15000
  const splitMs = options.short ? 3000 : 8000
  const cleanups: (() => Promise<unknown> | unknown)[] = []
  const cleanup = async (): Promise<void> => {
    for (const fn of cleanups.reverse()) await Promise.resolve(fn()).catch(() => {})
  }
  const onSignal = (): void => {
    void cleanup().then(() => process.exit(130))
  }
  process.once('SIGINT', onSignal)
  try {
    out('pg-pool-guard demo: a guarded pool and a plain pg.Pool side by side, 8 writers each, on real PostgreSQL.')
    out(`fault injection: ${mode === 'kernel' ? 'iptables blackhole (root)' : `a userspace blackhole proxy (${kernelFaultsUnavailable()})`}`)
    out('starting two primaries with streaming standbys ...')
    const vipSkipped = kernelFaultsUnavailable()
    const [c1, c2, c3] = await Promise.all([
      startCluster({ standby: true, primaryHost: '127.0.0.90', standbyHost: '127.0.0.91' }),
      startCluster({ standby: true, primaryHost: '127.0.0.92', standbyHost: '127.0.0.93' }),
      vipSkipped ? undefined : startCluster({ standby: true, primaryHost: '127.0.0.96', standbyHost: '127.0.0.97', replicationFromOwnAddress: true }),
    ])
    cleanups.push(() => c1.stop(), () => c2.stop(), () => c3?.stop())
    const metrics = await startMetrics()
    if (metrics) cleanups.push(metrics.stop)
    out(metrics ? `metrics: ${metrics.url}  (Prometheus format, the guarded pools' OpenTelemetry metrics)` : 'metrics: unavailable (install @opentelemetry/sdk-metrics and @opentelemetry/exporter-prometheus)')

    out('')
    out(`Act 1 — failover: the primary vanishes (no FIN, no RST) and the standby is promoted. Watching ${windowMs / 1000} s.`)
    const failover = await actFailover(c1, mode, steadyMs, windowMs, metrics?.provider ?? null, out, cleanups)
    out('')
    out(`Act 2 — split-brain: the standby is promoted while the old primary stays up and writable. Watching ${splitMs / 1000} s.`)
    const splitBrain = await actSplitBrain(c2, steadyMs, splitMs, metrics?.provider ?? null, out, cleanups)
    out('')
    let vip: ActOutcome | null = null
    if (c3) {
      out(`Act 3 — behind a virtual address (a Kubernetes Service): both pools are given one address; the standby is promoted and the address switched to it. Open connections stay pinned to the old primary, still writable. Watching ${splitMs / 1000} s.`)
      vip = await actVip(c3, steadyMs, splitMs, metrics?.provider ?? null, out, cleanups)
    } else {
      out(`Act 3 — behind a virtual address: skipped (${vipSkipped}; the address is iptables DNAT).`)
    }

    const summary: DemoSummary = { mode, metricsUrl: metrics?.url ?? null, failover, splitBrain, vip, vipSkipped }
    out('')
    for (const line of comparison(summary)) out(line)
    return summary
  } finally {
    process.off('SIGINT', onSignal)
    await cleanup()
  }
}

async function sides(config: pg.PoolConfig, guardedHosts: string | string[], guardedPort: number | number[], plainHost: string, plainPort: number, provider: unknown, tables: string, defaults = false): Promise<[Side, Side]> {
  const guard = defaults ? { poolName: `demo-${tables}`, meterProvider: provider as never } : { targetSessionAttrs: 'read-write' as const, poolName: `demo-${tables}`, meterProvider: provider as never }
  const guarded = new Pool({ ...config, host: guardedHosts, port: guardedPort, max: 8, guard })
  const plain = new pg.Pool({ ...config, host: plainHost, port: plainPort, max: 8 })
  const out: Side[] = []
  for (const [label, pool] of [['pg-pool-guard', guarded], ['pg.Pool', plain]] as const) {
    pool.on('error', () => {})
    const side: Side = { label, pool, evictions: [], sawNewPrimaryAt: null, load: await writeLoad(pool, { writers: 8, table: `${tables}_${label === 'pg.Pool' ? 'plain' : 'guarded'}` }) }
    if (pool instanceof Pool) {
      const first = pool.guard.topology().hosts[0].key
      pool.guard.on('evict', (e) => side.evictions.push(e))
      pool.guard.on('topology', () => {
        if (side.sawNewPrimaryAt === null && pool.guard.topology().primary !== null && pool.guard.topology().primary !== first) side.sawNewPrimaryAt = Date.now()
      })
    }
    out.push(side)
  }
  return out as [Side, Side]
}

async function actFailover(c: Cluster, mode: 'kernel' | 'toxic', steadyMs: number, windowMs: number, provider: unknown, out: (l: string) => void, cleanups: (() => unknown)[]): Promise<ActOutcome> {
  const [a, b] = c.servers
  let proxies: FaultProxy[] = []
  let targets = { hosts: [a.host, b.host], ports: [c.port, c.port] }
  if (mode === 'toxic') {
    proxies = await Promise.all([a, b].map((s, i) => faultProxy({ host: s.host, port: s.port }, { listenHost: `127.0.0.${94 + i}` })))
    cleanups.push(() => Promise.all(proxies.map((p) => p.stop())))
    targets = { hosts: proxies.map((p) => p.host), ports: proxies.map((p) => p.port) }
  }
  const pair = await sides(c.config, targets.hosts, targets.ports, targets.hosts[0], targets.ports[0], provider, 'act1')
  cleanups.push(() => endSides(pair))
  await Promise.all(pair.map((s) => s.load.firstAckOn(a.host)))
  await sleep(steadyMs)
  await c.caughtUp()
  if (mode === 'kernel') {
    const f = await blackhole(a.host, { port: c.port })
    cleanups.push(() => f.remove())
  } else {
    proxies[0].add('blackhole', { direction: 'upstream' })
    proxies[0].add('blackhole', { direction: 'downstream' })
  }
  const faultAt = Date.now()
  out(`  t+0.0 s  fault on ${a.host}; promoting ${b.host}`)
  await c.promote(b)
  await timeline(pair, faultAt, windowMs, a.host, b.host, out)
  return outcome(pair, faultAt, windowMs, a.host, b.host)
}

async function actSplitBrain(c: Cluster, steadyMs: number, windowMs: number, provider: unknown, out: (l: string) => void, cleanups: (() => unknown)[]): Promise<ActOutcome> {
  const [a, b] = c.servers
  const pair = await sides(c.config, [a.host, b.host], c.port, a.host, c.port, provider, 'act2')
  cleanups.push(() => endSides(pair))
  return promoteWhileWriting(c, pair, steadyMs, windowMs, out, `${a.host} still up and writable`)
}

async function actVip(c: Cluster, steadyMs: number, windowMs: number, provider: unknown, out: (l: string) => void, cleanups: (() => unknown)[]): Promise<ActOutcome> {
  const [a, b] = c.servers
  const vip = await c.virtualAddress({ address: '127.0.0.98' })
  cleanups.push(() => vip.remove())
  // The guarded pool gets nothing but the address and its defaults: it learns the standby from the primary.
  const pair = await sides(c.config, vip.host, vip.port, vip.host, vip.port, provider, 'act3', true)
  cleanups.push(() => endSides(pair))
  return promoteWhileWriting(c, pair, steadyMs, windowMs, out, `${vip.host} now leads there; ${a.host} still up and writable`, () => vip.switchTo(b))
}

/**
 * Both sides writing to the first server, then the second promoted (and `then`, e.g. a virtual address
 * switched), said at the time it is done, and the timeline of the window after it.
 */
async function promoteWhileWriting(
  c: Cluster, pair: Awaited<ReturnType<typeof sides>>, steadyMs: number, windowMs: number, out: (l: string) => void, said: string, then?: () => Promise<unknown>
): Promise<ActOutcome> {
  const [a, b] = c.servers
  await Promise.all(pair.map((s) => s.load.firstAckOn(a.host)))
  await sleep(steadyMs)
  await c.caughtUp()
  const promotedAt = Date.now()
  await c.promote(b)
  await then?.()
  out(`  t+${((Date.now() - promotedAt) / 1000).toFixed(1)} s  ${b.host} promoted; ${said}`)
  await timeline(pair, promotedAt, windowMs, a.host, b.host, out)
  return outcome(pair, promotedAt, windowMs, a.host, b.host)
}

/** One line a second: per pool, writes acknowledged that second and where, errors, writers stuck. */
async function timeline(pair: Side[], t0: number, windowMs: number, oldHost: string, newHost: string, out: (l: string) => void): Promise<void> {
  const col = (s: Side, from: number, to: number): string => {
    const acks = s.load.acks.filter((x) => x.at >= from && x.at < to)
    const onOld = acks.filter((x) => x.host === oldHost).length
    const onNew = acks.filter((x) => x.host === newHost).length
    const errs = s.load.failures.filter((x) => x.at >= from && x.at < to).length
    return `${pad(onOld, 5)} old ${pad(onNew, 5)} new ${pad(errs, 3)} err ${pad(s.load.hung(1000, to), 2)} hung`
  }
  out(`  ${'t'.padEnd(8)} | ${pair[0].label.padEnd(34)} | ${pair[1].label}`)
  for (let sec = 1; sec * 1000 <= windowMs; sec++) {
    await sleep(t0 + sec * 1000 - Date.now())
    const from = t0 + (sec - 1) * 1000
    const to = t0 + sec * 1000
    out(`  t+${String(sec).padStart(2)} s   | ${col(pair[0], from, to)} | ${col(pair[1], from, to)}`)
  }
}

function outcome(pair: Side[], t0: number, windowMs: number, oldHost: string, newHost: string): ActOutcome {
  const one = (s: Side): PoolOutcome => {
    const first = s.load.acks.find((x) => x.host === newHost && x.at >= t0)
    const errorCodes: Record<string, number> = {}
    for (const f of s.load.failures.filter((x) => x.at >= t0)) errorCodes[f.code] = (errorCodes[f.code] ?? 0) + 1
    const evictions: Record<string, number> = {}
    for (const e of s.evictions) evictions[e.reason] = (evictions[e.reason] ?? 0) + 1
    const saw = s.sawNewPrimaryAt
    return {
      firstWriteOnNewPrimaryMs: first ? first.at - t0 : null,
      oldPrimaryWritesAfterFault: s.load.ackedBy(oldHost, t0 + 1).length,
      guardSawNewPrimaryMs: saw === null ? null : saw - t0,
      oldPrimaryWritesAfterGuardSaw: saw === null ? null : s.load.sentAndAckedBy(oldHost, saw).length,
      // In flight since the first second after the fault: a writer that sent its write a few ms after the
      // fault (toxic mode applies it in-process, between two writes) is as stuck as one that sent it before.
      hung: s.load.hung(Date.now() - (t0 + 1000)),
      errors: s.load.failures.filter((x) => x.at >= t0).length,
      errorCodes,
      evictions,
      acknowledged: s.load.acks.filter((x) => x.at >= t0).length,
    }
  }
  return { windowMs, guarded: one(pair[0]), plain: one(pair[1]) }
}

async function endSides(pair: Side[]): Promise<void> {
  // Writers stuck on a dead socket finish once the servers and proxies are gone; do not wait for them here.
  void Promise.all(pair.map((s) => s.load.stop()))
  for (const s of pair) void s.pool.end().catch(() => {})
}

export function comparison(s: DemoSummary): string[] {
  const ms = (v: number | null, window: number): string => (v === null ? `never (in ${window / 1000} s)` : `${(v / 1000).toFixed(2)} s`)
  const codes = (o: PoolOutcome): string => (o.errors === 0 ? '0' : `${o.errors} (${Object.entries(o.errorCodes).map(([k, v]) => `${v} ${k}`).join(', ')})`)
  const ev = (o: PoolOutcome): string => Object.entries(o.evictions).map(([k, v]) => `${v} ${k}`).join(', ') || '-'
  const rows = (title: string, a: ActOutcome, lines: [string, (o: PoolOutcome) => string][]): string[] => [
    title,
    `  ${''.padEnd(50)} ${'pg-pool-guard'.padEnd(30)} pg.Pool`,
    ...lines.map(([label, f]) => `  ${label.padEnd(50)} ${f(a.guarded).padEnd(30)} ${f(a.plain)}`),
  ]
  return [
    ...rows('Act 1 — failover (primary blackholed, standby promoted)', s.failover, [
      ['first write on the new primary after the fault', (o) => ms(o.firstWriteOnNewPrimaryMs, s.failover.windowMs)],
      ['writers stuck since the fault, at the end', (o) => String(o.hung)],
      ['errors (the writes in flight at the fault)', codes],
      ['evictions by reason', ev],
      ['writes acknowledged after the fault', (o) => String(o.acknowledged)],
    ]),
    '',
    ...rows('Act 2 — split-brain (standby promoted, old primary still writable)', s.splitBrain, [
      ['writes acknowledged by the OLD primary after it', (o) => String(o.oldPrimaryWritesAfterFault)],
      ['... of those sent after the guard saw the promotion', (o) => (o.guardSawNewPrimaryMs === null ? '-' : `${o.oldPrimaryWritesAfterGuardSaw} (seen after ${ms(o.guardSawNewPrimaryMs, 0)})`)],
      ['first write on the new primary after promotion', (o) => ms(o.firstWriteOnNewPrimaryMs, s.splitBrain.windowMs)],
      ['evictions by reason', ev],
    ]),
    '',
    ...(s.vip
      ? rows('Act 3 — behind a virtual address (standby promoted, address switched, old primary still writable)', s.vip, [
          ['writes acknowledged by the OLD primary after it', (o) => String(o.oldPrimaryWritesAfterFault)],
          ['first write on the new primary after promotion', (o) => ms(o.firstWriteOnNewPrimaryMs, s.vip!.windowMs)],
          ['errors', codes],
          ['evictions by reason', ev],
        ])
      : [`Act 3 — behind a virtual address: skipped (${s.vipSkipped})`]),
    '',
    'Writes the old primary acknowledged after the promotion are lost: the new timeline never sees them.',
  ]
}

/** A Prometheus endpoint for the demo's metrics, when the (development) OpenTelemetry packages are there. */
async function startMetrics(): Promise<{ url: string; provider: unknown; stop: () => Promise<void> } | null> {
  try {
    const { MeterProvider } = require('@opentelemetry/sdk-metrics') as typeof import('@opentelemetry/sdk-metrics')
    const { PrometheusExporter } = require('@opentelemetry/exporter-prometheus') as typeof import('@opentelemetry/exporter-prometheus')
    const port = await freePort(['127.0.0.1'])
    const exporter = new PrometheusExporter({ host: '127.0.0.1', port, preventServerStart: false })
    const provider = new MeterProvider({ readers: [exporter] })
    return { url: `http://127.0.0.1:${port}/metrics`, provider, stop: () => provider.shutdown() }
  } catch {
    return null
  }
}

function pad(n: number, w: number): string {
  return String(n).padStart(w)
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, ms)))
}
