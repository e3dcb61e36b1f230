/**
 * OpenTelemetry metrics through @opentelemetry/api (an optional peer dependency: without it, or without an
 * SDK registered, every call here is a no-op). State is per pool instance: each pool reports its own
 * counts under its own db.client.connection.pool.name — unlike one counter shared by every pool in the
 * process (opentelemetry-js-contrib #3354).
 *
 * Instruments are created once per meter and shared; each pool adds its own batch observable callback,
 * removed when the pool ends.
 */
import type { Attributes, Counter, Histogram, Meter, MeterProvider, Observable, ObservableResult } from '@opentelemetry/api'
import {
  ATTR_IN_USE,
  ATTR_POOL_NAME,
  ATTR_PROBE_OUTCOME,
  ATTR_REASON,
  ATTR_REGION,
  ATTR_ROLE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_STATE,
  ATTR_TCP_STATE,
  ATTR_VERDICT,
  GUARD,
  type InstrumentSpec,
  SEMCONV,
  STATE_IDLE,
  STATE_USED,
} from './semconv'

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
  for (const s of [GUARD.sockets, GUARD.foreignSockets, GUARD.regions, GUARD.writableHosts]) {
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
    observables,
  }
  byMeter.set(meter, i)
  return i
}

/** What the observable callback reads, at collection time, from one pool. */
export interface PoolView {
  idle: number
  used: number
  max: number
  idleMin: number
  /** Configured idle ceiling: pg-pool keeps up to `max` idle. */
  idleMax: number
  pending: number
  sockets: { tcpState: string; address: string; port: number; region: string | null; role: string | null }[]
  foreignSockets: number
  regions: number
  writableHosts: number
}

export type MetricsMode = 'all' | 'guard-only' | 'off'

/** Per-pool metrics recorder; every method is cheap and safe without an SDK. */
export class PoolMetrics {
  private readonly i: Instruments | undefined
  private readonly base: Attributes
  private readonly meter: Meter | undefined
  private readonly callback: ((r: import('@opentelemetry/api').BatchObservableResult) => void) | undefined
  private readonly semconv: boolean
  private ended = false

  constructor(
    readonly poolName: string,
    mode: MetricsMode,
    provider: MeterProvider | null,
    view: () => PoolView
  ) {
    this.base = { [ATTR_POOL_NAME]: poolName }
    this.semconv = mode === 'all'
    const a = mode === 'off' ? null : loadApi()
    if (!a) return
    const meter = (provider ?? a.metrics.getMeterProvider()).getMeter('pg-pool-guard', VERSION)
    // No SDK registered: the API hands out a no-op meter. Record nothing then, not even no-op calls:
    // the per-query hooks (wait and use time) stay off the hot path.
    if (meter.constructor === a.createNoopMeter().constructor) return
    this.meter = meter
    this.i = instruments(this.meter)
    const o = this.i.observables
    const semconv = this.semconv
    const base = this.base
    const zero: PoolView = { idle: 0, used: 0, max: 0, idleMin: 0, idleMax: 0, pending: 0, sockets: [], foreignSockets: 0, regions: 0, writableHosts: 0 }
    this.callback = (r) => {
      // An ended pool reports zeros once (a cumulative SDK would otherwise keep showing its last values), then leaves.
      const v = this.ended ? zero : view()
      if (this.ended) setImmediate(() => this.unregister())
      if (semconv) {
        r.observe(o[SEMCONV.connectionCount.name], v.idle, { ...base, [ATTR_STATE]: STATE_IDLE })
        r.observe(o[SEMCONV.connectionCount.name], v.used, { ...base, [ATTR_STATE]: STATE_USED })
        r.observe(o[SEMCONV.idleMax.name], v.idleMax, base)
        r.observe(o[SEMCONV.idleMin.name], v.idleMin, base)
        r.observe(o[SEMCONV.max.name], v.max, base)
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
            attrs: { ...base, [ATTR_TCP_STATE]: s.tcpState, [ATTR_SERVER_ADDRESS]: s.address, [ATTR_SERVER_PORT]: s.port, [ATTR_REGION]: s.region ?? 'none', [ATTR_ROLE]: s.role ?? 'unknown' },
          })
        }
      }
      for (const g of groups.values()) r.observe(o[GUARD.sockets.name], g.n, g.attrs)
      r.observe(o[GUARD.foreignSockets.name], v.foreignSockets, base)
      r.observe(o[GUARD.regions.name], v.regions, base)
      r.observe(o[GUARD.writableHosts.name], v.writableHosts, base)
    }
    this.meter.addBatchObservableCallback(this.callback, Object.values(o))
    // Series known in advance start at 0, so dashboards and alerts have data before the first event.
    if (this.semconv) this.i.timeouts.add(0, base)
    this.i.retransmits.add(0, base)
    this.i.keepaliveProbes.add(0, base)
    this.i.probes.add(0, { ...base, [ATTR_PROBE_OUTCOME]: 'alive' })
    this.i.probes.add(0, { ...base, [ATTR_PROBE_OUTCOME]: 'dead' })
  }

  /** False without @opentelemetry/api, without an SDK, or with metrics 'off'. */
  get active(): boolean {
    return this.i !== undefined
  }

  timeout(): void {
    if (this.semconv) this.i?.timeouts.add(1, this.base)
  }

  createTime(ms: number): void {
    if (this.semconv) this.i?.createTime.record(ms / 1000, this.base)
  }

  waitTime(ms: number): void {
    if (this.semconv) this.i?.waitTime.record(ms / 1000, this.base)
  }

  useTime(ms: number): void {
    if (this.semconv) this.i?.useTime.record(ms / 1000, this.base)
  }

  verdict(kind: string): void {
    this.i?.verdicts.add(1, { ...this.base, [ATTR_VERDICT]: kind })
  }

  evicted(reason: string, inUse: boolean, detectionMs: number | null): void {
    if (!this.i) return
    this.i.evictions.add(1, { ...this.base, [ATTR_REASON]: reason, [ATTR_IN_USE]: inUse })
    if (detectionMs !== null) this.i.detectionTime.record(Math.max(0, detectionMs) / 1000, { ...this.base, [ATTR_REASON]: reason })
  }

  pass(ms: number, retransmits: number, probes: number): void {
    if (!this.i) return
    this.i.passDuration.record(ms / 1000, this.base)
    if (retransmits > 0) this.i.retransmits.add(retransmits, this.base)
    if (probes > 0) this.i.keepaliveProbes.add(probes, this.base)
  }

  probe(alive: boolean): void {
    this.i?.probes.add(1, { ...this.base, [ATTR_PROBE_OUTCOME]: alive ? 'alive' : 'dead' })
  }

  /** The pool ended: the next collection reports zeros, then this pool's callback is removed. */
  close(): void {
    this.ended = true
  }

  private unregister(): void {
    if (this.meter && this.callback && this.i) this.meter.removeBatchObservableCallback(this.callback, Object.values(this.i.observables))
  }
}

/** Pool names in use in this process, to keep each one unique (a second pool to the same target gets "#2"). */
const names = new Map<string, number>()

export function uniquePoolName(wanted: string): { name: string; release(): void } {
  let name = wanted
  for (let n = 2; names.has(name); n++) name = `${wanted}#${n}`
  names.set(name, 1)
  return { name, release: () => names.delete(name) }
}

export type { ObservableResult }
