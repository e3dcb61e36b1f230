/**
 * The kernel rules of the judge, pure: (pooled sockets, their kernel samples, what we remembered last tick, probe
 * results, now) -> verdicts with evidence, the new memory, and which hosts to probe. No I/O, no clock.
 *
 * Rules (each verdict names its evidence):
 * - zombie-unacked: data outstanding, RTO retransmissions, no ACK for stallMs.
 * - zombie-keepalive: no data outstanding, >= 2 keepalive probes unanswered (the first went a full interval).
 * - host consensus: sockets are grouped by remote endpoint. A stalled socket condemns its whole group only
 *   when no other socket of the group has heard anything from the host (an ACK or data) since the stall
 *   began, and no probe of the host succeeded since: a dead host silences every socket at once, a lossy link
 *   or a busy server does not. A lone active socket needs one more retransmission (lossy links stall single
 *   sockets often; a dead host keeps stalling them). A stalled socket whose siblings are heard from is left
 *   alone until stallHardLimitMs.
 * - peer-closed: CLOSE_WAIT / LAST_ACK / CLOSING seen for graceMs while the pool still holds the client.
 * - vanished: the kernel no longer has the socket (state CLOSE, no handle, fd reused) for graceMs.
 * - host-unresponsive: a probe of the host failed and no socket to it received data within stallMs — the
 *   kernel cannot see a hang behind a proxy that keeps ACKing, or a frozen server process. Probes are requested for queries waiting past probeAfterMs with no
 *   data and no kernel evidence, and on kernel suspicion (a retransmission with no progress in the group).
 * - Safety: a socket that received data within stallMs is alive at the application level and is never
 *   condemned, except for peer-closed and vanished, where the kernel's word is final.
 */
import type { KernelSample } from '../kernel/sample'
import { TcpState, tcpStateName } from '../kernel/tcp-info'
import { fmt } from '../util/time'
import { type KernelVerdictKind, type ProbeVerdictKind, type Verdict, VERDICTS } from './verdicts'

/** The verdicts these rules reach (the verdict table says what each one does). */
export type SocketVerdictKind = KernelVerdictKind | ProbeVerdictKind

export interface ClassifierOptions {
  stallMs: number
  keepAliveIntervalMs: number
  minRetransmits: number
  stallHardLimitMs: number
  probeAfterMs: number
  graceMs: number
}

export interface SocketInput {
  id: number
  /** Remote endpoint, "ip:port" (IPv4-mapped addresses normalized). */
  endpoint: string
  /** The configured host:port the socket was made for (what a host-level verdict marks down). */
  hostKey: string
  inUse: boolean
  queryInFlight: boolean
  /** Undefined when no sample could be taken. */
  sample: KernelSample | undefined
  /** Why the kernel has no such socket any more (no handle, fd reused, row missing), or null. */
  gone: string | null
}

/** What the classifier remembers about a socket between ticks. */
export interface SocketMemory {
  bytesReceived: bigint | null
  bytesAcked: bigint | null
  txQueue: number | null
  retransmits: number
  /** Last time the socket showed progress we could measure from /proc (changes in tx_queue, retransmits). */
  progressAt: number | null
  /** First seen with data outstanding and no ACK progress (backdated by the RTO schedule). */
  stallSince: number | null
  inFlightSince: number | null
  closedSince: number | null
  goneSince: number | null
}

export interface ProbeResult {
  endpoint: string
  alive: boolean
  startedAt: number
  finishedAt: number
  error?: string
}

export interface ClassifyInput {
  now: number
  sockets: SocketInput[]
  memory: ReadonlyMap<number, SocketMemory>
  /** Latest finished probe per endpoint. */
  probes: ReadonlyMap<string, ProbeResult>
  options: ClassifierOptions
  /**
   * Endpoints the health rule calls degraded (loss, RTT): there, silence is more likely loss than death,
   * so a stall alone condemns nothing and a probe decides (a failed probe is host-unresponsive).
   */
  degraded?: ReadonlySet<string>
}

/** A kernel or probe verdict: the socket's endpoint, and whether the host consensus found its host dead. */
export interface SocketVerdict extends Verdict<SocketVerdictKind> {
  endpoint: string
  /** Host consensus found the socket's host dead (the verdict table says which verdicts mark it down then). */
  hostDead: boolean
}

export interface ProbeRequest {
  endpoint: string
  why: string
  urgent: boolean
}

export interface HostSummary {
  endpoint: string
  sockets: number
  active: number
  progressing: number
  stalled: number
  dead: boolean
}

export interface ClassifyOutput {
  verdicts: SocketVerdict[]
  memory: Map<number, SocketMemory>
  /** Endpoints that deserve a probe now (the caller rate-limits; `urgent` ones come from kernel suspicion). */
  probe: ProbeRequest[]
  hosts: HostSummary[]
}

const CLOSED_BY_PEER = new Set<number>([TcpState.CLOSE_WAIT, TcpState.LAST_ACK, TcpState.CLOSING])

/** Kernel timestamps are jiffies (4 ms at HZ=250); a receive this close to a stall's start is not "after" it. */
const CLOCK_SLACK_MS = 10

interface Assessed {
  s: SocketInput
  mem: SocketMemory
  /** An ACK or data within stallMs (or, from /proc, a change within stallMs). */
  progressing: boolean
  /** When the host was last heard from on this socket (ACK or data), if known. */
  lastRecvAt: number | null
  /** When the current stall began (first unacked send, or first unanswered keepalive probe). */
  stallStartAt: number | null
  receivedDataRecently: boolean
  /** ms with unacked data and no ACK, or 0. */
  stalledForMs: number
  stalledUnacked: boolean
  stalledKeepalive: boolean
  suspicious: boolean
  own?: Omit<SocketVerdict, 'id' | 'endpoint' | 'hostDead'>
}

export function classify(input: ClassifyInput): ClassifyOutput {
  const { now, options: o } = input
  const memory = new Map<number, SocketMemory>()
  const assessed = input.sockets.map((s) => {
    const a = assess(s, input.memory.get(s.id), now, o)
    memory.set(s.id, a.mem)
    return a
  })

  const groups = new Map<string, Assessed[]>()
  for (const a of assessed) {
    const g = groups.get(a.s.endpoint)
    if (g) g.push(a)
    else groups.set(a.s.endpoint, [a])
  }

  const verdicts: SocketVerdict[] = []
  const probe: ProbeRequest[] = []
  const hosts: HostSummary[] = []
  for (const [endpoint, group] of groups) {
    const probeResult = input.probes.get(endpoint)
    const probeAlive = probeResult?.alive === true && now - probeResult.finishedAt < o.stallMs
    const progressing = group.filter((a) => a.progressing).length + (probeAlive ? 1 : 0)
    const active = group.filter((a) => a.s.queryInFlight || a.stalledForMs > 0 || (a.s.sample?.probes ?? 0) > 0).length
    const lone = active <= 1
    const stalled = group.filter((a) => a.stalledKeepalive || (a.stalledUnacked && a.s.sample!.retransmits >= o.minRetransmits + (lone ? 1 : 0)))
    // Heard from since `t`: any other socket got an ACK or data from the host after t, or a probe succeeded.
    const heardSince = (t: number, except?: Assessed): number =>
      group.filter((x) => x !== except && x.lastRecvAt !== null && x.lastRecvAt > t + CLOCK_SLACK_MS).length +
      (probeResult?.alive && probeResult.finishedAt > t ? 1 : 0)
    const silentSinceStall = stalled.find((a) => heardSince(a.stallStartAt!, a) === 0)
    // On a degraded (lossy) link every socket can be in retransmission backoff at once, the host alive:
    // ask a probe instead of condemning on silence (18 % loss once evicted a whole pool here).
    const lossy = input.degraded?.has(endpoint) === true
    const lead = lossy ? undefined : silentSinceStall
    if (lossy && silentSinceStall) {
      probe.push({ endpoint, urgent: true, why: `socket #${silentSinceStall.s.id}: ${describeStall(silentSinceStall, o)} on a degraded link: a probe decides` })
    }
    const dead = lead !== undefined
    hosts.push({ endpoint, sockets: group.length, active, progressing, stalled: stalled.length, dead })

    const condemned = new Set<number>()
    const add = (a: Assessed, v: Omit<SocketVerdict, 'id' | 'endpoint' | 'hostDead'>): void => {
      if (condemned.has(a.s.id)) return
      condemned.add(a.s.id)
      verdicts.push({ id: a.s.id, endpoint, hostDead: dead, ...v })
    }
    // Definitive kernel states first.
    for (const a of group) if (a.own) add(a, a.own)

    const consensus = (a: Assessed): string => `${heardSince(a.stallStartAt!, a)}/${group.length} sockets to ${endpoint} progressing`
    if (lead) {
      const leadEvidence = describeStall(lead, o)
      for (const a of stalled) {
        add(a, { kind: a.stalledKeepalive ? 'zombie-keepalive' : 'zombie-unacked', evidence: `${describeStall(a, o)}, ${consensus(lead)}`, firstEvidenceAt: a.stallStartAt! })
      }
      for (const a of group) {
        add(a, { kind: 'host-dead', evidence: `host ${endpoint} is dead: socket #${lead.s.id} has ${leadEvidence}, ${consensus(lead)}`, firstEvidenceAt: lead.stallStartAt! })
      }
    } else {
      for (const a of group) {
        if (a.stalledUnacked && a.stalledForMs >= o.stallHardLimitMs) {
          add(a, { kind: 'zombie-unacked', evidence: `${describeStall(a, o)}, hard limit ${fmt(o.stallHardLimitMs)} reached although ${consensus(a)}`, firstEvidenceAt: a.stallStartAt! })
        }
      }
    }

    // A failed probe condemns the host only when no socket to it received data within stallMs: on a lossy
    // link a probe can lose its SYN while the pooled sockets still get answers.
    const silent = group.every((a) => !a.receivedDataRecently)
    if (probeResult && !probeResult.alive && probeResult.finishedAt >= now - o.graceMs * 2 && silent) {
      for (const a of group) {
        const waited = a.mem.inFlightSince === null ? '' : `, a query waited ${fmt(now - a.mem.inFlightSince)} with no data`
        add(a, {
          kind: 'host-unresponsive',
          evidence: `probe of ${endpoint} failed after ${fmt(probeResult.finishedAt - probeResult.startedAt)} (${probeResult.error ?? 'no answer'})${waited}`,
          firstEvidenceAt: a.mem.inFlightSince ?? probeResult.startedAt,
        })
      }
    }

    // Safety: never condemn a socket that received data recently (except on the kernel's final word).
    for (let i = verdicts.length - 1; i >= 0; i--) {
      const v = verdicts[i]
      if (v.endpoint !== endpoint || VERDICTS[v.kind].definitive) continue
      const a = group.find((x) => x.s.id === v.id)!
      if (a.receivedDataRecently) verdicts.splice(i, 1)
    }

    if (!dead) {
      const suspicious = group.find((a) => a.suspicious)
      if (suspicious && progressing === 0) probe.push({ endpoint, urgent: true, why: `socket #${suspicious.s.id}: ${describeStall(suspicious, o)}` })
      const waiting = group.find((a) => waitedWithoutData(a, now, o))
      if (waiting && !suspicious) {
        probe.push({ endpoint, urgent: false, why: `socket #${waiting.s.id}: query in flight ${fmt(now - waiting.mem.inFlightSince!)} with no data and no kernel evidence` })
      }
    }
  }
  return { verdicts, memory, probe, hosts }
}

function assess(s: SocketInput, prev: SocketMemory | undefined, now: number, o: ClassifierOptions): Assessed {
  const k = s.sample
  const mem: SocketMemory = {
    bytesReceived: k?.bytesReceived ?? null,
    bytesAcked: k?.bytesAcked ?? null,
    txQueue: k?.txQueue ?? null,
    retransmits: k?.retransmits ?? 0,
    progressAt: prev?.progressAt ?? null,
    stallSince: null,
    inFlightSince: s.queryInFlight ? (prev?.inFlightSince ?? now) : null,
    closedSince: null,
    goneSince: null,
  }
  const base = { s, mem, progressing: false, lastRecvAt: null, stallStartAt: null, receivedDataRecently: false, stalledForMs: 0, stalledUnacked: false, stalledKeepalive: false, suspicious: false }

  const goneWhy = s.gone ?? (k?.state === TcpState.CLOSE ? 'state CLOSE' : null)
  if (goneWhy) {
    mem.goneSince = prev?.goneSince ?? now
    const own = now - mem.goneSince >= o.graceMs
      ? { kind: 'vanished' as const, evidence: `the kernel no longer has this socket (${goneWhy}) for ${fmt(now - mem.goneSince)}`, firstEvidenceAt: mem.goneSince }
      : undefined
    return { ...base, own }
  }
  if (!k) return base

  if (CLOSED_BY_PEER.has(k.state)) {
    mem.closedSince = prev?.closedSince ?? now
    const own = now - mem.closedSince >= o.graceMs
      ? { kind: 'peer-closed' as const, evidence: `the peer closed the connection (${tcpStateName(k.state)} for ${fmt(now - mem.closedSince)})`, firstEvidenceAt: mem.closedSince }
      : undefined
    return { ...base, own }
  }

  let progressing: boolean
  let receivedDataRecently: boolean
  let lastRecvAt: number | null
  let stalledForMs = 0
  let ackAdvanced: boolean
  if (k.source === 'tcp_info') {
    const gotBytes = prev?.bytesReceived != null && k.bytesReceived != null && k.bytesReceived > prev.bytesReceived
    ackAdvanced = prev?.bytesAcked != null && k.bytesAcked != null && k.bytesAcked > prev.bytesAcked
    receivedDataRecently = gotBytes || (k.msSinceDataRecv ?? Infinity) < o.stallMs
    const sinceRecv = Math.min(k.msSinceAck ?? Infinity, k.msSinceDataRecv ?? Infinity)
    lastRecvAt = Number.isFinite(sinceRecv) ? now - sinceRecv : null
    progressing = receivedDataRecently || ackAdvanced || sinceRecv < o.stallMs
  } else {
    // /proc gives no timings: progress is a change we saw between two reads.
    ackAdvanced = prev != null && (k.txQueue !== prev.txQueue || k.retransmits < prev.retransmits)
    if (ackAdvanced) mem.progressAt = now
    lastRecvAt = mem.progressAt
    progressing = mem.progressAt !== null && now - mem.progressAt < o.stallMs
    receivedDataRecently = false
  }
  let stallStartAt: number | null = null
  if (k.outstanding && !ackAdvanced) {
    // When the oldest unacked segment was first sent: its n-th retransmission went out base x (2^n - 1)
    // after it (base = the RTO before backoff), and the last one msSinceDataSent ago (the kernel stamps
    // retransmissions as sends). /proc has no send time: there the RTO schedule alone is a lower bound.
    mem.stallSince = prev?.stallSince ?? now - (k.msSinceDataSent ?? 0) - rtoElapsedMs(k)
    stalledForMs = Math.min(now - mem.stallSince, k.msSinceAck ?? Infinity)
    stallStartAt = now - stalledForMs
  }
  const stalledUnacked = k.outstanding && k.retransmits >= o.minRetransmits && stalledForMs >= o.stallMs && !progressing
  const stalledKeepalive = !k.outstanding && k.probes >= 2 && !progressing
  // The first unanswered probe went out at least (probes - 1) intervals ago.
  if (stalledKeepalive) stallStartAt = now - (k.probes - 1) * o.keepAliveIntervalMs
  // Keepalive needs no early suspicion: two unanswered probes are already a stall.
  const suspicious = k.outstanding && k.retransmits >= 1 && !progressing
  return { ...base, progressing, lastRecvAt, stallStartAt, receivedDataRecently, stalledForMs, stalledUnacked, stalledKeepalive, suspicious }
}

/** Minimum time the oldest unacked segment has waited, given its retransmission count and the RTO. */
export function rtoElapsedMs(k: KernelSample): number {
  if (k.retransmits === 0 || k.rtoMs === null) return 0
  const base = k.rtoMs / 2 ** k.backoff
  return base * (2 ** k.retransmits - 1)
}

function waitedWithoutData(a: Assessed, now: number, o: ClassifierOptions): boolean {
  if (!a.s.queryInFlight || a.mem.inFlightSince === null || now - a.mem.inFlightSince < o.probeAfterMs) return false
  const k = a.s.sample
  if (!k || a.stalledUnacked || a.stalledKeepalive) return false
  return k.msSinceDataRecv === null || k.msSinceDataRecv >= o.probeAfterMs
}

function describeStall(a: Assessed, o: ClassifierOptions): string {
  const k = a.s.sample
  if (!k) return 'no kernel sample'
  if (a.stalledForMs > 0) return `${k.retransmits} retransmits, no ACK for ${fmt(a.stalledForMs)}`
  if (k.probes > 0) {
    const silent = k.msSinceAck !== null ? `, no ACK for ${fmt(k.msSinceAck)}` : ''
    return `${k.probes} keepalive probes unanswered${silent}`
  }
  return `${k.retransmits} retransmits`
}

