/**
 * Host health, pure: per endpoint, (this tick's kernel samples of its sockets, what we remembered last tick,
 * now, options) -> a state, `healthy` or `degraded`, with the numbers behind it and, when the state
 * changes, a transition with its evidence. No I/O, no clock.
 *
 * This rule sees failure coming; it never condemns anything. A slow or lossy host is still answering, and
 * evicting its sockets would only add connection storms to its trouble: the kernel rules (kernel-rules.ts)
 * decide what is dead, this one produces states for metrics, events and host selection.
 *
 * - RTT. Each socket's smoothed RTT (tcpi_rtt) is read only from sockets that sent or received a segment
 *   since the last tick: an idle socket's srtt is the value of its last exchange, however old. The host's RTT
 *   is the median over those sockets, smoothed again with an EWMA (`rttSmoothingMs`). Its baseline is a slow
 *   EWMA (`baselineTauMs`) of that RTT, updated only while the host is healthy and nothing is pending, so a
 *   fault never becomes the norm; it falls at the fast rate (the best the host has done recently is the
 *   baseline), and starts at the first RTT seen.
 * - Retransmissions. Σ Δtcpi_total_retrans / Σ Δtcpi_segs_out over the endpoint's sockets, taken over the
 *   most recent segments: the newest ticks until `minSegments` segments (the oldest tick pro rata), never
 *   further back than `windowMs`. Fewer than `minSegments` in the window: not judged (null). segs_out counts
 *   pure ACKs too, so on a request/response link the ratio is a lower bound of the loss rate.
 * - Degraded: the RTT exceeds baseline + max((rttFactor − 1) × baseline, rttMarginMs) — i.e. more than
 *   rttFactor × the baseline and more than rttMarginMs above it — or the ratio exceeds retransmitRatio; and
 *   either holds on every tick for sustainMs.
 * - Healthy again: both below `recoverFraction` of their thresholds (the RTT excess over the baseline, the
 *   ratio) on every tick for recoverMs. Hysteresis: a host on the edge does not flap.
 * - A host whose sockets go quiet keeps its last RTT, so it keeps its state until traffic says otherwise;
 *   an idle host never changes state. Samples without segs_out (a kernel before 4.2, a /proc row) feed only
 *   the queued bytes.
 * - Also reported, not judged: bytes the application wrote that the kernel has not sent (tcpi_notsent_bytes,
 *   or a /proc row's tx_queue), segments in flight, keepalive probes unanswered on sockets with nothing
 *   outstanding.
 */
import { type DefaultsTable, defaultValues } from '../defaults'
import type { KernelSample } from '../kernel/sample'

export type HostHealthState = 'healthy' | 'degraded'

export interface HealthOptions {
  rttFactor: number
  rttMarginMs: number
  retransmitRatio: number
  minSegments: number
  windowMs: number
  sustainMs: number
  recoverMs: number
  recoverFraction: number
  rttSmoothingMs: number
  baselineTauMs: number
}

/** The defaults, each with its unit and the reason it is what it is. `HEALTH_DEFAULTS` is read from here. */
export const HEALTH_DEFAULTS_TABLE: DefaultsTable<HealthOptions> = {
  rttFactor: {
    value: 4, unit: '× baseline',
    why: 'RTT on a healthy LAN or in-region link varies 2-3× with load (queueing, CPU); 4× is beyond that jitter and well short of the 100× a WAN detour or a saturated link shows',
  },
  rttMarginMs: {
    value: 20, unit: 'ms',
    why: 'on loopback and in-AZ links (0.1-1 ms) a factor alone trips on a 2 ms hiccup nobody notices; +20 ms is what a query path starts to feel (an OLTP statement is a few ms) and above in-region jitter',
  },
  retransmitRatio: {
    value: 0.05, unit: 'retransmitted / sent segments',
    why: 'a healthy datacenter link retransmits well under 1 %; 5 % costs TCP throughput severely (cwnd halvings, RTO waits) and is the usual alerting level for lossy links',
  },
  minSegments: {
    value: 50, unit: 'segments',
    why: 'below 50 segments one retransmission is already 2 %: too few to tell loss from a single unlucky segment; 50 keeps the ratio a measurement and is reached within a tick under load',
  },
  windowMs: {
    value: 10_000, unit: 'ms',
    why: 'the ratio never reaches further back than this: a host quieter than minSegments per 10 s is not judged on retransmissions (too little traffic to measure), and old losses age out',
  },
  sustainMs: {
    value: 2000, unit: 'ms',
    why: '8 ticks at the 250 ms check interval: one GC pause, a checkpoint spike or a burst of losses passes; a real fault still shows within 5 s with the smoothing delay',
  },
  recoverMs: {
    value: 5000, unit: 'ms',
    why: 'longer than sustainMs, so a link that recovers and relapses stays degraded instead of flapping; short enough that traffic is preferred again within ~10 s of the fault ending',
  },
  recoverFraction: {
    value: 0.5, unit: 'of each threshold',
    why: 'hysteresis: a host must be clearly better (half the RTT excess, half the ratio) to be healthy again, not just under the line it crossed',
  },
  rttSmoothingMs: {
    value: 1000, unit: 'ms (EWMA time constant)',
    why: 'the kernel srtt is already smoothed per socket (gain 1/8); a second, 1 s time constant across ticks removes per-tick median noise and still follows a step within ~2 s',
  },
  baselineTauMs: {
    value: 300_000, unit: 'ms (EWMA time constant)',
    why: 'slow enough that a fault growing over seconds or minutes stands out against it, fast enough to follow load through the day; the same 5 min as the kernel\'s min-RTT window (tcp_min_rtt_wlen)',
  },
}

export const HEALTH_DEFAULTS: Readonly<HealthOptions> = Object.freeze(defaultValues(HEALTH_DEFAULTS_TABLE))

/** One pooled socket as the rule sees it (a structural subset of kernel-rules' SocketInput). */
export interface HealthSocket {
  id: number
  /** Remote endpoint, "ip:port". */
  endpoint: string
  /** Undefined when no sample could be taken. */
  sample: KernelSample | undefined
}

interface Counters {
  segsOut: number
  segsIn: number
  totalRetrans: number
}

/** Segments sent and retransmitted by the endpoint's sockets between two ticks. */
interface WindowEntry {
  from: number
  at: number
  segs: number
  retrans: number
}

/** What the rule remembers about an endpoint between ticks. Treat as opaque; hand it back next tick. */
export interface HostHealthMemory {
  state: HostHealthState
  /** When the current state was entered (null: healthy since first seen). */
  since: number | null
  /** The last tick. */
  at: number | null
  rttMs: number | null
  rttAt: number | null
  baselineRttMs: number | null
  counters: ReadonlyMap<number, Counters>
  window: readonly WindowEntry[]
  /** While healthy: the degradation condition has held on every tick since. */
  badSince: number | null
  /** While degraded: below the recovery thresholds on every tick since. */
  goodSince: number | null
  /** While degraded: the worst seen, for the recovery's evidence. */
  worstRttMs: number | null
  worstRatio: number | null
}

export interface HostHealth {
  endpoint: string
  state: HostHealthState
  since: number | null
  sockets: number
  /** Sockets that sent or received a segment since the last tick (the RTT is read from these). */
  activeSockets: number
  /** Smoothed host RTT, its baseline, and the RTT above which the host counts as degraded. */
  rttMs: number | null
  baselineRttMs: number | null
  rttLimitMs: number | null
  /** Retransmitted / sent segments over `ratioSegments` segments in the last `ratioSpanMs`; null: too few. */
  retransmitRatio: number | null
  ratioSegments: number
  ratioSpanMs: number | null
  /** Bytes written and not yet sent (tcpi_notsent_bytes), or a /proc row's tx_queue. */
  queuedBytes: number
  /** Segments in flight, unacknowledged (TCP_INFO). */
  unackedSegments: number
  /** Keepalive probes unanswered, summed over sockets with nothing outstanding. */
  keepaliveProbes: number
  /** While healthy: the degradation condition holds since then, not yet for sustainMs. */
  pendingSince: number | null
  /** In the units metrics want. */
  metrics: { rttSeconds: number | null; baselineRttSeconds: number | null; retransmitRatio: number | null; queuedBytes: number }
}

export interface HealthTransition {
  endpoint: string
  from: HostHealthState
  to: HostHealthState
  at: number
  /** When the condition that caused it began (the first tick of the sustained period). */
  firstEvidenceAt: number
  /** E.g. "rtt 0.3 → 104 ms, 18 % of segments retransmitted over 1.0 s". */
  evidence: string
}

export interface HostHealthInput {
  endpoint: string
  /** The endpoint's sockets this tick. */
  sockets: readonly Omit<HealthSocket, 'endpoint'>[]
  memory: HostHealthMemory | undefined
  now: number
  options: HealthOptions
}

export interface HostHealthOutput {
  health: HostHealth
  memory: HostHealthMemory
  transition: HealthTransition | null
}

export function initialHealthMemory(): HostHealthMemory {
  return {
    state: 'healthy', since: null, at: null, rttMs: null, rttAt: null, baselineRttMs: null, counters: new Map(), window: [],
    badSince: null, goodSince: null, worstRttMs: null, worstRatio: null,
  }
}

/** The RTT above which a host is degraded (k = 1), or below which it counts as recovered (k = recoverFraction). */
export function rttLimitMs(baselineMs: number, o: HealthOptions, k = 1): number {
  return baselineMs + k * Math.max((o.rttFactor - 1) * baselineMs, o.rttMarginMs)
}

/** One endpoint, one tick. */
export function hostHealth(input: HostHealthInput): HostHealthOutput {
  const { now, options: o } = input
  const prev = input.memory ?? initialHealthMemory()

  let queuedBytes = 0
  let unackedSegments = 0
  let keepaliveProbes = 0
  let segs = 0
  let retrans = 0
  const rtts: number[] = []
  const counters = new Map<number, Counters>()
  for (const { id, sample: k } of input.sockets) {
    if (!k) continue
    queuedBytes += k.source === 'proc' ? (k.txQueue ?? 0) : (k.notsentBytes ?? 0)
    unackedSegments += k.unacked ?? 0
    if (!k.outstanding) keepaliveProbes += k.probes
    if (k.segsOut == null || k.totalRetrans == null) continue
    const c = { segsOut: k.segsOut, segsIn: k.segsIn ?? 0, totalRetrans: k.totalRetrans }
    counters.set(id, c)
    const p = prev.counters.get(id)
    // A socket seen for the first time (or counters that went back: a reused id) only sets the reference.
    if (!p || c.segsOut < p.segsOut || c.totalRetrans < p.totalRetrans || c.segsIn < p.segsIn) continue
    segs += c.segsOut - p.segsOut
    retrans += c.totalRetrans - p.totalRetrans
    if ((c.segsOut > p.segsOut || c.segsIn > p.segsIn) && k.rttMs != null && k.rttMs > 0) rtts.push(k.rttMs)
  }

  const window = prev.window.filter((w) => w.at > now - o.windowMs)
  if (segs > 0 && prev.at !== null) window.push({ from: prev.at, at: now, segs, retrans })
  const ratio = recentRatio(window, o.minSegments)

  let rttMs = prev.rttMs
  let rttAt = prev.rttAt
  if (rtts.length) {
    const tick = median(rtts)
    rttMs = rttMs === null || rttAt === null ? tick : ewma(rttMs, tick, now - rttAt, o.rttSmoothingMs)
    rttAt = now
  }
  const baseline = prev.baselineRttMs ?? rttMs

  const rttBad = rttMs !== null && baseline !== null && rttMs > rttLimitMs(baseline, o)
  const ratioBad = ratio.value !== null && ratio.value > o.retransmitRatio
  const rttGood = rttMs === null || baseline === null || rttMs <= rttLimitMs(baseline, o, o.recoverFraction)
  const ratioGood = ratio.value === null || ratio.value <= o.retransmitRatio * o.recoverFraction

  const next: HostHealthMemory = { ...prev, at: now, rttMs, rttAt, baselineRttMs: baseline, counters, window }
  let transition: HealthTransition | null = null
  const fmtRatio = () => (ratio.value === null ? null : `${pct(ratio.value)} of segments retransmitted over ${secs(ratio.spanMs!)}`)

  if (prev.state === 'healthy') {
    next.badSince = rttBad || ratioBad ? (prev.badSince ?? now) : null
    if (next.badSince !== null && now - next.badSince >= o.sustainMs) {
      const parts = [rttMs !== null && baseline !== null ? `rtt ${ms(baseline)} → ${ms(rttMs)} ms` : null, fmtRatio()]
      if (keepaliveProbes > 0) parts.push(`${keepaliveProbes} keepalive probes unanswered`)
      transition = { endpoint: input.endpoint, from: 'healthy', to: 'degraded', at: now, firstEvidenceAt: next.badSince, evidence: parts.filter(Boolean).join(', ') }
      Object.assign(next, { state: 'degraded', since: now, badSince: null, goodSince: null, worstRttMs: rttMs, worstRatio: ratio.value })
    } else if (next.badSince === null && rtts.length && baseline !== null && rttMs !== null) {
      // Healthy with nothing pending, and a fresh measurement: the baseline learns. It falls fast, rises slowly.
      const dt = prev.rttAt === null ? 0 : now - prev.rttAt
      next.baselineRttMs = ewma(baseline, rttMs, dt, rttMs < baseline ? o.rttSmoothingMs : o.baselineTauMs)
    }
  } else {
    next.worstRttMs = max(prev.worstRttMs, rttMs)
    next.worstRatio = max(prev.worstRatio, ratio.value)
    next.goodSince = rttGood && ratioGood ? (prev.goodSince ?? now) : null
    if (next.goodSince !== null && now - next.goodSince >= o.recoverMs) {
      const parts = [next.worstRttMs !== null && rttMs !== null ? `rtt ${ms(next.worstRttMs)} → ${ms(rttMs)} ms` : null, fmtRatio()]
      const evidence = `${parts.filter(Boolean).join(', ') || 'no traffic'}; below ${pct(o.recoverFraction)} of the thresholds for ${secs(now - next.goodSince)}`
      transition = { endpoint: input.endpoint, from: 'degraded', to: 'healthy', at: now, firstEvidenceAt: next.goodSince, evidence }
      Object.assign(next, { state: 'healthy', since: now, goodSince: null, badSince: null, worstRttMs: null, worstRatio: null })
    }
  }

  const b = next.baselineRttMs
  return {
    memory: next,
    transition,
    health: {
      endpoint: input.endpoint,
      state: next.state,
      since: next.since,
      sockets: input.sockets.length,
      activeSockets: rtts.length,
      rttMs,
      baselineRttMs: b,
      rttLimitMs: b === null ? null : rttLimitMs(b, o),
      retransmitRatio: ratio.value,
      ratioSegments: ratio.segs,
      ratioSpanMs: ratio.spanMs,
      queuedBytes,
      unackedSegments,
      keepaliveProbes,
      pendingSince: next.badSince,
      metrics: { rttSeconds: rttMs === null ? null : rttMs / 1000, baselineRttSeconds: b === null ? null : b / 1000, retransmitRatio: ratio.value, queuedBytes },
    },
  }
}

export interface HealthInput {
  now: number
  /** Every pooled socket this tick, any endpoint. */
  sockets: readonly HealthSocket[]
  /** Per endpoint, from the last call. */
  memory: ReadonlyMap<string, HostHealthMemory>
  options: HealthOptions
}

export interface HealthOutput {
  /** One per endpoint with sockets this tick, in endpoint order. */
  hosts: HostHealth[]
  transitions: HealthTransition[]
  /** Endpoints without sockets this tick keep their memory (baseline included) until the caller drops them. */
  memory: Map<string, HostHealthMemory>
}

/** Every endpoint, one tick: `hostHealth` per endpoint the sockets are grouped by. */
export function assessHealth(input: HealthInput): HealthOutput {
  const groups = new Map<string, HealthSocket[]>()
  for (const s of input.sockets) groups.set(s.endpoint, [...(groups.get(s.endpoint) ?? []), s])
  const memory = new Map(input.memory)
  const hosts: HostHealth[] = []
  const transitions: HealthTransition[] = []
  for (const endpoint of [...groups.keys()].sort()) {
    const out = hostHealth({ endpoint, sockets: groups.get(endpoint)!, memory: input.memory.get(endpoint), now: input.now, options: input.options })
    memory.set(endpoint, out.memory)
    hosts.push(out.health)
    if (out.transition) transitions.push(out.transition)
  }
  return { hosts, transitions, memory }
}

/** The newest entries until `min` segments (the oldest one pro rata); null when the window holds fewer. */
function recentRatio(window: readonly WindowEntry[], min: number): { value: number | null; segs: number; spanMs: number | null } {
  let segs = 0
  let retrans = 0
  for (let i = window.length - 1; i >= 0; i--) {
    const w = window[i]
    const take = Math.min(1, (min - segs) / w.segs)
    segs += w.segs * take
    retrans += w.retrans * take
    if (segs >= min) return { value: retrans / segs, segs: Math.round(segs), spanMs: window.at(-1)!.at - w.from }
  }
  return { value: null, segs: Math.round(segs), spanMs: null }
}

function ewma(prev: number, value: number, dtMs: number, tauMs: number): number {
  const alpha = tauMs <= 0 ? 1 : 1 - Math.exp(-Math.max(0, dtMs) / tauMs)
  return prev + alpha * (value - prev)
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

function max(a: number | null, b: number | null): number | null {
  return a === null ? b : b === null ? a : Math.max(a, b)
}

/** "0.3", "2.1", "104": one decimal below 10 ms. */
function ms(v: number): string {
  return v < 10 ? String(Math.round(v * 10) / 10) : String(Math.round(v))
}

/** "18 %", "0.4 %". */
function pct(r: number): string {
  const p = r * 100
  return `${p < 10 && p !== Math.round(p) ? Math.round(p * 10) / 10 : Math.round(p)} %`
}

/** "0.8 s", "10 s". */
function secs(v: number): string {
  const s = v / 1000
  return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`
}
