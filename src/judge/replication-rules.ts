/**
 * Replication links, pure: per host, (its monitor's latest replication reading, what we remembered, now,
 * options) -> `streaming`, `lost` or `unknown`, with the detail behind it and, when it turns lost or back
 * to streaming, a transition with its evidence. No I/O, no clock.
 *
 * The split-brain early warning: a standby that lost its upstream is the moment before someone promotes
 * it, and a primary left without a standby is the other side of the same cut. A state to watch and alert
 * on, never a verdict: nothing is evicted for it.
 *
 * - Standby, bad: no walreceiver (not connected), a walreceiver not `streaming`, or one that has heard
 *   nothing from its upstream for longer than half of wal_receiver_timeout + `slackMs`. At half its
 *   timeout the walreceiver asks the upstream for a reply, so a healthy link, even an idle one, is never
 *   silent much longer; the walreceiver itself gives up only at the full timeout (60 s by default).
 * - Primary, bad: no physical walsender `streaming` whose standby replied within
 *   wal_receiver_status_interval + `slackMs` (standbys reply at least that often). Counted only when a
 *   standby is expected: the pool lists more than one host, or this host was seen with one before.
 * - Lost once bad on every reading for `lostMs`; streaming again once good on every reading for `recoverMs`
 *   (hysteresis: a link that comes back for one poll and drops again stays lost).
 * - Without pg_monitor the server shows only whether the walreceiver / walsenders exist: presence is judged,
 *   silence cannot be (`readable: false`, with why). An unreachable host or a server that cannot show it
 *   at all is `unknown`; the hysteresis starts over from there.
 */
import type { DefaultsTable } from '../defaults'
import { type HostReplication, type ReplicationReading, type ReplicationState, unknownReplication } from '../topology/replication-query'

export type { HostReplication, ReplicationState }

export interface ReplicationOptions {
  lostMs: number
  recoverMs: number
  slackMs: number
}

/** Defaults of what is not a guard option (lostMs is: `replicationLostMs`), each with its reason. */
export const REPLICATION_DEFAULTS: DefaultsTable<Omit<ReplicationOptions, 'lostMs'>> = {
  recoverMs: {
    value: 1000, unit: 'ms',
    why: 'two good polls at the 500 ms topology interval: one answer from a flapping link is not a recovery, and ok is reported within about a second of the link streaming again',
  },
  slackMs: {
    value: 1000, unit: 'ms',
    why: 'beyond the server\'s own bound (half of wal_receiver_timeout, wal_receiver_status_interval): the round trip of the ping or reply, the walreceiver\'s wake-up and a busy server; under the 3 s that a lost link must then persist',
  },
}

export interface ReplicationMemory {
  current: HostReplication
  /** The state last reported by a transition ('lost'), so that 'ok' follows a 'lost', and only that. */
  reported: 'lost' | 'ok' | null
  badSince: number | null
  goodSince: number | null
  /** This host (as a primary) was seen with a standby. */
  seenStandby: boolean
  /** While reported lost: the first bad reading of that loss (the 'ok' evidence says how long it lasted). */
  lostFrom: number | null
}

export interface ReplicationTransition {
  /** The configured host, "host:port". */
  host: string
  state: 'lost' | 'ok'
  at: number
  /** When the readings that caused it began. */
  firstEvidenceAt: number
  /** E.g. "no walreceiver running (not connected to its upstream) for 3.2 s". */
  evidence: string
}

export interface ReplicationInput {
  host: string
  /** The monitor's latest reading; null when the host could not be read (unreachable). */
  reading: ReplicationReading | null
  /** Whether a primary is expected to have a standby (several hosts configured). */
  standbyExpected: boolean
  memory: ReplicationMemory | undefined
  now: number
  options: ReplicationOptions
}

export interface ReplicationOutput {
  replication: HostReplication
  memory: ReplicationMemory
  transition: ReplicationTransition | null
}

/** What one reading says, before time is taken into account: good, bad, or cannot tell. */
interface Assessment {
  verdict: 'good' | 'bad' | 'unknown'
  detail: string | null
  readable: boolean
  why: string | null
  lagSeconds: number | null
  upstream: string | null
  standbys: number | null
}

const NOT_VISIBLE = 'details not visible (needs pg_monitor): only whether'

function assess(reading: ReplicationReading | null, o: ReplicationOptions, standbyExpected: boolean): Assessment {
  const none = { lagSeconds: null, upstream: null, standbys: null }
  if (reading === null) return { verdict: 'unknown', detail: null, readable: false, why: 'host not reachable', ...none }
  if (reading.side === 'unavailable') return { verdict: 'unknown', detail: null, readable: false, why: reading.why, ...none }
  if (reading.side === 'standby') {
    const upstream = reading.upstream
    if (!reading.receiver) return { verdict: 'bad', detail: 'no walreceiver running (not connected to its upstream)', readable: true, why: null, ...none }
    if (!reading.visible) return { verdict: 'good', detail: 'a walreceiver is running', readable: false, why: `${NOT_VISIBLE} a walreceiver runs`, ...none }
    const from = upstream ? ` from ${upstream}` : ''
    if (reading.status !== 'streaming') return { verdict: 'bad', detail: `walreceiver ${reading.status}${from}`, readable: true, why: null, ...none, upstream }
    const heard = reading.silenceMs === null ? 'nothing received yet' : `last message ${secs(reading.silenceMs)} ago`
    const limit = reading.receiverTimeoutMs > 0 ? reading.receiverTimeoutMs / 2 + o.slackMs : null
    if (limit !== null && reading.silenceMs !== null && reading.silenceMs > limit) {
      return {
        verdict: 'bad', readable: true, why: null, ...none, upstream,
        detail: `walreceiver streaming${from} but silent: ${heard} (a healthy link answers within ${secs(reading.receiverTimeoutMs / 2)}, half of wal_receiver_timeout)`,
      }
    }
    const why = limit === null ? 'wal_receiver_timeout is 0: a silent upstream cannot be told from an idle one' : null
    return { verdict: 'good', detail: `walreceiver streaming${from}, ${heard}`, readable: true, why, ...none, upstream }
  }
  const visible = reading.senders.filter((s) => s.state !== null)
  if (reading.senders.length > 0 && visible.length === 0) {
    return { verdict: 'good', detail: `${count(reading.senders.length, 'walsender')} connected`, readable: false, why: `${NOT_VISIBLE} walsenders are connected`, ...none, standbys: reading.senders.length }
  }
  const limit = reading.statusIntervalMs > 0 ? reading.statusIntervalMs + o.slackMs : null
  const fresh = visible.filter((s) => s.state === 'streaming' && (limit === null || s.replyAgeMs === null || s.replyAgeMs <= limit))
  const lags = fresh.map((s) => s.replayLagS).filter((x): x is number => x !== null)
  const lagSeconds = lags.length ? Math.max(...lags) : null
  if (fresh.length > 0) {
    const lag = lagSeconds === null ? '' : `, replay lag ${secs(lagSeconds * 1000)}`
    return { verdict: 'good', detail: `${count(fresh.length, 'standby')} streaming${lag}`, readable: true, why: null, lagSeconds, upstream: null, standbys: fresh.length }
  }
  const stale = visible.filter((s) => s.state === 'streaming')
  const detail = stale.length
    ? `no standby replied within ${secs(limit!)} (wal_receiver_status_interval + ${secs(o.slackMs)}): last reply ${secs(Math.min(...stale.map((s) => s.replyAgeMs ?? 0)))} ago`
    : visible.length
      ? `no standby streaming (walsenders: ${visible.map((s) => s.state).join(', ')})`
      : 'no standby connected'
  if (!standbyExpected) return { verdict: 'unknown', detail, readable: true, why: 'no standby expected (one host configured, none seen)', ...none, standbys: 0 }
  return { verdict: 'bad', detail, readable: true, why: null, ...none, standbys: 0 }
}

/** One host, one reading. */
export function judgeReplication(input: ReplicationInput): ReplicationOutput {
  const { now, options: o } = input
  const prev = input.memory ?? { current: unknownReplication('not read yet'), reported: null, badSince: null, goodSince: null, seenStandby: false, lostFrom: null }
  const seenStandby = prev.seenStandby || (input.reading?.side === 'primary' && input.reading.senders.length > 0)
  const a = assess(input.reading, o, input.standbyExpected || seenStandby)
  const badSince = a.verdict === 'bad' ? (prev.badSince ?? now) : null
  const goodSince = a.verdict === 'good' ? (prev.goodSince ?? now) : null
  const was = prev.current.state

  let state: ReplicationState
  if (a.verdict === 'unknown') state = 'unknown'
  else if (a.verdict === 'bad') state = was === 'lost' || now - badSince! >= o.lostMs ? 'lost' : was === 'streaming' ? 'streaming' : 'unknown'
  else state = was !== 'lost' || now - goodSince! >= o.recoverMs ? 'streaming' : 'lost'

  let transition: ReplicationTransition | null = null
  let reported = prev.reported
  let lostFrom = prev.lostFrom
  if (state === 'lost' && reported !== 'lost') {
    transition = { host: input.host, state: 'lost', at: now, firstEvidenceAt: badSince!, evidence: `${a.detail} for ${secs(now - badSince!)}` }
    reported = 'lost'
    lostFrom = badSince
  } else if (state === 'streaming' && reported === 'lost') {
    const lostFor = lostFrom === null ? '' : `; down for ${secs(goodSince! - lostFrom)}`
    transition = { host: input.host, state: 'ok', at: now, firstEvidenceAt: goodSince!, evidence: `${a.detail}${lostFor}` }
    reported = 'ok'
    lostFrom = null
  }

  const replication: HostReplication = {
    state,
    since: state === was ? prev.current.since : now,
    detail: a.detail,
    lagSeconds: a.lagSeconds,
    upstream: a.upstream,
    standbys: a.standbys,
    readable: a.readable,
    why: a.why,
    pendingSince: state === 'lost' ? null : badSince,
  }
  return { replication, transition, memory: { current: replication, reported, badSince, goodSince, seenStandby, lostFrom } }
}

/** "1 standby", "2 standbys". */
function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`
}

/** "0.4 s", "31 s". */
function secs(ms: number): string {
  const s = ms / 1000
  return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`
}
