/**
 * OpenTelemetry metrics through @opentelemetry/api (an optional peer dependency: without it, or without an
 * SDK registered, every call here is a no-op). State is per pool instance: each pool reports its own
 * counts under its own db.client.connection.pool.name — unlike one counter shared by every pool in the
 * process (opentelemetry-js-contrib #3354).
 *
 * Instruments are created once per meter and shared; each pool adds its own batch observable callback,
 * removed when the pool ends.
 *
 * Without an explicit meterProvider a pool binds lazily: if the global MeterProvider is still the no-op
 * when the pool is created (an SDK started after the import that created the pool), maybeBind() re-checks
 * on the guard's pass, and the pool starts reporting once an SDK has registered.
 */
import type { Attributes, Counter, Histogram, Meter, MeterProvider, Observable, ObservableResult } from '@opentelemetry/api'
import {
  ATTR_CLIENT_ZONE,
  ATTR_HOST_STATE,
  ATTR_HOST_STATUS,
  ATTR_IN_USE,
  ATTR_POOL_NAME,
  ATTR_OUTCOME,
  ATTR_PROBE_OUTCOME,
  ATTR_RESOLUTION,
  ATTR_REASON,
  ATTR_REGION,
  ATTR_REPLICATION_STATE,
  ATTR_ROLE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_STATE,
  ATTR_TCP_STATE,
  ATTR_VERDICT,
  FLEET,
  GUARD,
  HOST_HEALTH,
  HOST_STATE_DEGRADED,
  HOST_STATE_HEALTHY,
  HOST_STATUS_DEGRADED,
  HOST_STATUS_DOWN,
  HOST_STATUS_UP,
  type InstrumentSpec,
  REPLICATION,
  REPLICATION_STATE_LOST,
  REPLICATION_STATE_OK,
  REPLICATION_STATE_UNKNOWN,
  SEMCONV,
  STATE_IDLE,
  STATE_USED,
} from './semconv'
import { clientZone } from './resource'

const VERSION = '0.1.0'

type Api = typeof import('@opentelemetry/api')
let api: Api | null | undefined

function loadApi(): Api | null {
  if (api === undefined) {
    try {
      api = require('@opentelemetry/api') as Api
    } catch {
      api = null
    }
  }
  return api
}

interface Instruments {
  timeouts: Counter
  createTime: Histogram
  waitTime: Histogram
  useTime: Histogram
  evictions: Counter
  verdicts: Counter
  retransmits: Counter
  keepaliveProbes: Counter
  detectionTime: Histogram
  passDuration: Histogram
  probes: Counter
  queryOutcomes: Counter
  inDoubtResolved: Counter
  observables: Record<string, Observable>
}

const byMeter = new WeakMap<Meter, Instruments>()

function instruments(meter: Meter): Instruments {
  let i = byMeter.get(meter)
  if (i) return i
  const counter = (s: InstrumentSpec): Counter => meter.createCounter(s.name, { unit: s.unit, description: s.description })
  const histogram = (s: InstrumentSpec): Histogram =>
    meter.createHistogram(s.name, { unit: s.unit, description: s.description, advice: s.buckets ? { explicitBucketBoundaries: s.buckets } : undefined })
  const observables: Record<string, Observable> = {}
  for (const s of [SEMCONV.connectionCount, SEMCONV.idleMax, SEMCONV.idleMin, SEMCONV.max, SEMCONV.pendingRequests]) {
    observables[s.name] = meter.createObservableUpDownCounter(s.name, { unit: s.unit, description: s.description })
  }
  for (const s of [GUARD.sockets, GUARD.foreignSockets, GUARD.regions, GUARD.writableHosts, ...Object.values(HOST_HEALTH), ...Object.values(REPLICATION), ...Object.values(FLEET)]) {
    observables[s.name] = meter.createObservableGauge(s.name, { unit: s.unit, description: s.description })
  }
  i = {
    timeouts: counter(SEMCONV.timeouts),
    createTime: histogram(SEMCONV.createTime),
    waitTime: histogram(SEMCONV.waitTime),
    useTime: histogram(SEMCONV.useTime),
    evictions: counter(GUARD.evictions),
    verdicts: counter(GUARD.verdicts),
    retransmits: counter(GUARD.retransmits),
    keepaliveProbes: counter(GUARD.keepaliveProbes),
    detectionTime: histogram(GUARD.detectionTime),
    passDuration: histogram(GUARD.passDuration),
    probes: counter(GUARD.probes),
    queryOutcomes: counter(GUARD.queryOutcomes),
    inDoubtResolved: counter(GUARD.inDoubtResolved),
    observables,
  }
  byMeter.set(meter, i)
  return i
}

/** What the observable callback reads, at collection time, from one pool. */
export interface PoolView {
  idle: number
  used: number
  /** Null where no pool sets a ceiling (standalone clients): not reported. */
  max: number | null
  idleMin: number | null
  /** Configured idle ceiling: pg-pool keeps up to `max` idle. */
  idleMax: number | null
  pending: number
  sockets: { tcpState: string; address: string; port: number; region: string | null; role: string | null }[]
  foreignSockets: number
  regions: number
  writableHosts: number
  /** Per monitored host, from the replication rule. */
  replication: { address: string; port: number; state: 'streaming' | 'lost' | 'unknown'; lagSeconds: number | null }[]
  /** Per endpoint, from the host-health rule. */
  health: { address: string; port: number; state: 'healthy' | 'degraded'; rttSeconds: number | null; retransmitRatio: number | null; queuedBytes: number }[]
  /** Per host the pool knows, this instance's judgement of it (fleet view); hosts not reached yet are left out. */
  hostStatus?: { address: string; port: number; status: 'up' | 'degraded' | 'down' | null }[]
  /** Per host the pool knows, the timeline its monitor read if the pool holds writable sockets through it, else 0 (fleet view: dual writes). */
  writableTimelines?: { address: string; port: number; timeline: number }[]
}

export type MetricsMode = 'all' | 'guard-only' | 'off'

/**
 * The no-op meter's class, to tell "no SDK registered" from a real meter without allocating on every check.
 * NoopMeterProvider hands out one shared NoopMeter instance, but comparing classes also covers an API copy
 * that builds a fresh one.
 */
let noopMeterClass: unknown
function isNoop(a: Api, meter: Meter): boolean {
  noopMeterClass ??= a.createNoopMeter().constructor
  return meter.constructor === noopMeterClass
}

/** Per-pool metrics recorder; every method is cheap and safe without an SDK. */
export class PoolMetrics {
  private i: Instruments | undefined
  private readonly base: Attributes
  /**
   * `base` plus the client's zone, for the pg_pool_guard.* instruments only: built once here, so no data
   * point pays for it, and the per-checkout semantic-convention histograms keep `base` (and their cost).
   */
  private readonly guardBase: Attributes
  private meter: Meter | undefined
  private callback: ((r: import('@opentelemetry/api').BatchObservableResult) => void) | undefined
  private readonly semconv: boolean
  private readonly mode: MetricsMode
  private readonly view: () => PoolView
  /**
   * Set while this pool waits for an SDK: no explicit meterProvider was given and the global one was still
   * the no-op. With hoisted ESM imports a pool is often created before the SDK's start() registers the
   * global MeterProvider; checking once at construction would leave such a pool silent for good.
   */
  private waitingApi: Api | undefined
  /** The global provider seen at the last check: while it is the same object nothing can have changed. */
  private seen: MeterProvider | undefined
  private bindListeners: (() => void)[] | undefined
  private besideWhat: 'instrumentation-pg' | null = null
  private ended = false

  constructor(
    readonly poolName: string,
    mode: MetricsMode,
    provider: MeterProvider | null,
    view: () => PoolView,
    /** The `zone` option; null reads it from OTEL_RESOURCE_ATTRIBUTES (telemetry/resource.ts). */
    zone: string | null = null
  ) {
    this.base = { [ATTR_POOL_NAME]: poolName }
    const z = clientZone(zone)
    this.guardBase = z === null ? this.base : { ...this.base, [ATTR_CLIENT_ZONE]: z }
    this.mode = mode
    this.semconv = mode === 'all'
    this.view = view
    const a = mode === 'off' ? null : loadApi()
    if (!a) return
    // An explicit provider is taken as given, even a no-op one: the caller chose it.
    if (provider) this.bind(a, provider)
    else {
      this.waitingApi = a
      this.maybeBind()
    }
  }

  /**
   * Starts reporting if an SDK registered a global MeterProvider since the last check; true when this pool
   * reports. Meant for the guard's once-a-second tick (and called from pass(), createTime() and probe()):
   * while nothing changed it is one global read and one identity comparison, no allocation.
   */
  maybeBind(): boolean {
    if (this.i !== undefined) return true
    const a = this.waitingApi
    if (a === undefined || this.ended) return false
    const p = a.metrics.getMeterProvider()
    if (p === this.seen) return false
    this.seen = p
    if (!this.bind(a, p)) return false
    this.waitingApi = undefined
    const listeners = this.bindListeners
    this.bindListeners = undefined
    if (listeners) for (const fn of listeners) fn()
    return true
  }

  /**
   * Calls fn once when this pool starts reporting after construction (a lazily bound SDK), so a caller that
   * keeps per-checkout hooks off while inactive can install them then. Never called if already active.
   */
  onBind(fn: () => void): void {
    if (this.i !== undefined || this.waitingApi === undefined) return
    ;(this.bindListeners ??= []).push(fn)
  }

  private bind(a: Api, provider: MeterProvider): boolean {
    const meter = provider.getMeter('pg-pool-guard', VERSION)
    // No SDK registered: the API hands out a no-op meter. Record nothing then, not even no-op calls:
    // the per-query hooks (wait and use time) stay off the hot path.
    if (isNoop(a, meter)) return false
    this.meter = meter
    this.i = instruments(meter)
    this.besideWhat = besideInstrumentationPg(this.mode)
    const o = this.i.observables
    const semconv = this.semconv
    const base = this.base
    const gbase = this.guardBase
    const view = this.view
    const zero: PoolView = { idle: 0, used: 0, max: 0, idleMin: 0, idleMax: 0, pending: 0, sockets: [], foreignSockets: 0, regions: 0, writableHosts: 0, health: [], replication: [] }
    // The fleet series last reported: an ended pool reports them as zeros (no current state, no timeline).
    let fleetHosts: { address: string; port: number }[] = []
    // The SDK keeps exporting an observable's attribute set with its last value once it is no longer observed
    // (cumulative storage), so a socket group or an endpoint that went away would keep its last count and
    // state for good: 4 ESTABLISHED sockets to a host the pool has long evicted. Each collection reports 0
    // for those that went away since the last one (a true count, and "no current state").
    let lastGroups = new Map<string, Attributes>()
    let lastEndpoints = new Map<string, Attributes>()
    this.callback = (r) => {
      // An ended pool reports zeros once (a cumulative SDK would otherwise keep showing its last values), then leaves.
      const v = this.ended ? { ...zero, hostStatus: fleetHosts.map((h) => ({ ...h, status: null })), writableTimelines: fleetHosts.map((h) => ({ ...h, timeline: 0 })) } : view()
      if (!this.ended) {
        const seen = new Map([...(v.hostStatus ?? []), ...(v.writableTimelines ?? [])].map((h) => [`${h.address}|${h.port}`, { address: h.address, port: h.port }]))
        fleetHosts = [...seen.values()]
      }
      if (this.ended) setImmediate(() => this.unregister())
      if (semconv) {
        r.observe(o[SEMCONV.connectionCount.name], v.idle, { ...base, [ATTR_STATE]: STATE_IDLE })
        r.observe(o[SEMCONV.connectionCount.name], v.used, { ...base, [ATTR_STATE]: STATE_USED })
        if (v.idleMax !== null) r.observe(o[SEMCONV.idleMax.name], v.idleMax, base)
        if (v.idleMin !== null) r.observe(o[SEMCONV.idleMin.name], v.idleMin, base)
        if (v.max !== null) r.observe(o[SEMCONV.max.name], v.max, base)
        r.observe(o[SEMCONV.pendingRequests.name], v.pending, base)
      }
      const groups = new Map<string, { n: number; attrs: Attributes }>()
      for (const s of v.sockets) {
        const key = `${s.tcpState}|${s.address}|${s.port}|${s.region}|${s.role}`
        const g = groups.get(key)
        if (g) g.n++
        else {
          groups.set(key, {
            n: 1,
            attrs: { ...gbase, [ATTR_TCP_STATE]: s.tcpState, [ATTR_SERVER_ADDRESS]: s.address, [ATTR_SERVER_PORT]: s.port, [ATTR_REGION]: s.region ?? 'none', [ATTR_ROLE]: s.role ?? 'unknown' },
          })
        }
      }
      for (const g of groups.values()) r.observe(o[GUARD.sockets.name], g.n, g.attrs)
      for (const [key, attrs] of lastGroups) if (!groups.has(key)) r.observe(o[GUARD.sockets.name], 0, attrs)
      lastGroups = new Map([...groups].map(([k, g]) => [k, g.attrs]))
      r.observe(o[GUARD.foreignSockets.name], v.foreignSockets, gbase)
      r.observe(o[GUARD.regions.name], v.regions, gbase)
      r.observe(o[GUARD.writableHosts.name], v.writableHosts, gbase)
      const endpoints = new Map<string, Attributes>()
      for (const h of v.health) {
        const at = { ...gbase, [ATTR_SERVER_ADDRESS]: h.address, [ATTR_SERVER_PORT]: h.port }
        endpoints.set(`${h.address}|${h.port}`, at)
        for (const state of [HOST_STATE_HEALTHY, HOST_STATE_DEGRADED]) r.observe(o[HOST_HEALTH.health.name], h.state === state ? 1 : 0, { ...at, [ATTR_HOST_STATE]: state })
        if (h.rttSeconds !== null) r.observe(o[HOST_HEALTH.rtt.name], h.rttSeconds, at)
        if (h.retransmitRatio !== null) r.observe(o[HOST_HEALTH.retransmitRatio.name], h.retransmitRatio, at)
        r.observe(o[HOST_HEALTH.queuedBytes.name], h.queuedBytes, at)
      }
      // An endpoint with no socket left: no current health state, nothing queued. (Its RTT and retransmit
      // ratio keep their last values: 0 would be a false measurement, and the SDK cannot drop a series.)
      for (const [key, at] of lastEndpoints) {
        if (endpoints.has(key)) continue
        for (const state of [HOST_STATE_HEALTHY, HOST_STATE_DEGRADED]) r.observe(o[HOST_HEALTH.health.name], 0, { ...at, [ATTR_HOST_STATE]: state })
        r.observe(o[HOST_HEALTH.queuedBytes.name], 0, at)
      }
      lastEndpoints = endpoints
      for (const h of v.replication) {
        const at = { ...gbase, [ATTR_SERVER_ADDRESS]: h.address, [ATTR_SERVER_PORT]: h.port }
        const current = h.state === 'streaming' ? REPLICATION_STATE_OK : h.state === 'lost' ? REPLICATION_STATE_LOST : REPLICATION_STATE_UNKNOWN
        for (const state of [REPLICATION_STATE_OK, REPLICATION_STATE_LOST, REPLICATION_STATE_UNKNOWN]) {
          r.observe(o[REPLICATION.state.name], current === state ? 1 : 0, { ...at, [ATTR_REPLICATION_STATE]: state })
        }
        if (h.lagSeconds !== null) r.observe(o[REPLICATION.lag.name], h.lagSeconds, at)
      }
      for (const h of v.hostStatus ?? []) {
        const at = { ...gbase, [ATTR_SERVER_ADDRESS]: h.address, [ATTR_SERVER_PORT]: h.port }
        for (const status of [HOST_STATUS_UP, HOST_STATUS_DEGRADED, HOST_STATUS_DOWN]) {
          r.observe(o[FLEET.hostStatus.name], h.status === status ? 1 : 0, { ...at, [ATTR_HOST_STATUS]: status })
        }
      }
      for (const w of v.writableTimelines ?? []) {
        r.observe(o[FLEET.writableTimeline.name], w.timeline, { ...gbase, [ATTR_SERVER_ADDRESS]: w.address, [ATTR_SERVER_PORT]: w.port })
      }
    }
    meter.addBatchObservableCallback(this.callback, Object.values(o))
    // Series known in advance start at 0, so dashboards and alerts have data before the first event.
    if (this.semconv) this.i.timeouts.add(0, base)
    this.i.retransmits.add(0, gbase)
    this.i.keepaliveProbes.add(0, gbase)
    this.i.probes.add(0, { ...gbase, [ATTR_PROBE_OUTCOME]: 'alive' })
    this.i.probes.add(0, { ...gbase, [ATTR_PROBE_OUTCOME]: 'dead' })
    return true
  }

  /** Another library reporting the same pool metric names, found when this pool bound (see "Beside @opentelemetry/instrumentation-pg"). */
  get beside(): 'instrumentation-pg' | null {
    return this.besideWhat
  }

  /** False without @opentelemetry/api, without an SDK, or with metrics 'off'. */
  get active(): boolean {
    return this.i !== undefined
  }

  timeout(): void {
    if (this.semconv) this.i?.timeouts.add(1, this.base)
  }

  createTime(ms: number): void {
    if (this.i === undefined) this.maybeBind()
    if (this.semconv) this.i?.createTime.record(ms / 1000, this.base)
  }

  waitTime(ms: number): void {
    if (this.semconv) this.i?.waitTime.record(ms / 1000, this.base)
  }

  useTime(ms: number): void {
    if (this.semconv) this.i?.useTime.record(ms / 1000, this.base)
  }

  verdict(kind: string): void {
    this.i?.verdicts.add(1, { ...this.guardBase, [ATTR_VERDICT]: kind })
  }

  evicted(reason: string, inUse: boolean, detectionMs: number | null): void {
    if (!this.i) return
    this.i.evictions.add(1, { ...this.guardBase, [ATTR_REASON]: reason, [ATTR_IN_USE]: inUse })
    if (detectionMs !== null) this.i.detectionTime.record(Math.max(0, detectionMs) / 1000, { ...this.guardBase, [ATTR_REASON]: reason })
  }

  pass(ms: number, retransmits: number, keepaliveProbes: number): void {
    if (this.i === undefined) this.maybeBind()
    const i = this.i
    if (i === undefined) return
    i.passDuration.record(ms / 1000, this.guardBase)
    if (retransmits > 0) i.retransmits.add(retransmits, this.guardBase)
    if (keepaliveProbes > 0) i.keepaliveProbes.add(keepaliveProbes, this.guardBase)
  }

  probe(alive: boolean): void {
    if (this.i === undefined) this.maybeBind()
    this.i?.probes.add(1, { ...this.guardBase, [ATTR_PROBE_OUTCOME]: alive ? 'alive' : 'dead' })
  }

  /** A query failed by an eviction, and what became of it. */
  queryOutcome(outcome: string): void {
    this.i?.queryOutcomes.add(1, { ...this.guardBase, [ATTR_OUTCOME]: outcome })
  }

  /** An in-doubt write resolved (resolveInDoubt), and what the server said. */
  resolved(resolution: string): void {
    this.i?.inDoubtResolved.add(1, { ...this.guardBase, [ATTR_RESOLUTION]: resolution })
  }

  /** The pool ended: the next collection reports zeros, then this pool's callback is removed. */
  close(): void {
    this.ended = true
    this.waitingApi = undefined
    this.bindListeners = undefined
  }

  private unregister(): void {
    if (this.meter && this.callback && this.i) this.meter.removeBatchObservableCallback(this.callback, Object.values(this.i.observables))
  }
}

/**
 * Beside @opentelemetry/instrumentation-pg. Its pg-pool patch reports db.client.connection.count,
 * .pending_requests and .max under the same names as ours, from one counter shared by every pool in the
 * process, so its numbers are wrong as soon as there are two pools (opentelemetry-js-contrib #3354). With
 * the Prometheus exporter 0.223 (the newest for Node 20) the two scopes' same-named metrics come out as two
 * HELP lines and Prometheus rejects the whole page; 0.301 merges them into one family, and the page is valid
 * but each pool has two series, one of them wrong.
 *
 * What the default ('all') does: keep reporting ours and warn once with the fix (drop instrumentation-pg's
 * pool metrics with INSTRUMENTATION_PG_POOL_VIEW). Not the alternatives, because:
 * - stepping aside (emitting guard-only on detection) trades right per-pool numbers for wrong ones, and
 *   which set you get would then depend on load order; there is no way to opt back in once its are dropped;
 * - renaming ours off the semantic-convention names breaks every semconv dashboard and alert, for a fault
 *   of older exporters that 0.301 no longer has;
 * - a View can only be set where the MeterProvider is built, which is the application's code, not ours.
 * 'guard-only' is honoured (the user chose it) but warns too: it leaves the shared, wrong-with-two-pools
 * counts as the only ones.
 *
 * Detected, when a pool's metrics bind, by pg-pool's prototype.connect being shimmer-wrapped by
 * instrumentation-pg (its wrapper starts the "pg-pool.connect" span). A registration after pg was loaded
 * patches nothing, so there is nothing to find then either.
 */
export const WARN_INSTRUMENTATION_PG = 'PGG_METRICS_INSTRUMENTATION_PG'

export { INSTRUMENTATION_PG_POOL_VIEW } from './views'

const VIEW_TEXT =
  "{ meterName: '@opentelemetry/instrumentation-pg', instrumentName: 'db.client.connection.*', aggregation: { type: AggregationType.DROP } }"
const warned = new Set<string>()

function warnOnce(key: string, message: string): void {
  if (warned.has(key)) return
  warned.add(key)
  process.emitWarning(`pg-pool-guard: ${message}`, { code: WARN_INSTRUMENTATION_PG })
}

/** True when some loaded copy of pg-pool has its connect wrapped by @opentelemetry/instrumentation-pg. */
export function instrumentationPgPatchesPools(): boolean {
  const cache = typeof require === 'function' ? require.cache : undefined
  if (!cache) return false
  for (const path in cache) {
    if (!/[\\/]pg-pool[\\/]index\.js$/.test(path)) continue
    const exp = cache[path]?.exports as { prototype?: { connect?: unknown } } | undefined
    const connect = exp?.prototype?.connect as ((...args: unknown[]) => unknown) & { __wrapped?: boolean } | undefined
    if (typeof connect === 'function' && connect.__wrapped === true && Function.prototype.toString.call(connect).includes('pg-pool.connect')) return true
  }
  return false
}

function besideInstrumentationPg(mode: MetricsMode): 'instrumentation-pg' | null {
  if (!instrumentationPgPatchesPools()) return null
  if (mode === 'all') {
    warnOnce('all',
      '@opentelemetry/instrumentation-pg also reports db.client.connection.count, .pending_requests and .max, from one counter shared by ' +
        'every pool (wrong with two pools, opentelemetry-js-contrib #3354); with @opentelemetry/exporter-prometheus 0.223 and older the ' +
        'page then has two HELP lines per name and Prometheus rejects it. Drop its pool metrics with a View on your MeterProvider: ' +
        VIEW_TEXT + ' (pg-pool-guard reports them per pool).')
  } else if (mode === 'guard-only') {
    warnOnce('guard-only',
      "metrics 'guard-only' leaves db.client.connection.* to @opentelemetry/instrumentation-pg, whose counts are shared by every pool " +
        "(wrong with two pools, opentelemetry-js-contrib #3354). Prefer the default 'all' and drop its pool metrics with a View: " + VIEW_TEXT)
  }
  return 'instrumentation-pg'
}

/** Pool names in use in this process, to keep each one unique (a second pool to the same target gets "#2"). */
const names = new Map<string, number>()

export function uniquePoolName(wanted: string): { name: string; release(): void } {
  let name = wanted
  for (let n = 2; names.has(name); n++) name = `${wanted}#${n}`
  names.set(name, 1)
  let released = false
  return {
    name,
    // Idempotent: once released, the name may belong to a newer pool.
    release: () => {
      if (!released) names.delete(name)
      released = true
    },
  }
}

export type { ObservableResult }
