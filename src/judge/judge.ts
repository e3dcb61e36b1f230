/**
 * The judge, pure: facts in, every decision out, as data. No I/O, no clock, no callbacks. Two doors:
 *
 *   judge(tick facts)      — the scheduler's tick: kernel samples (+ memory, host probes), host health and
 *                            the connect planner's degraded hosts, replication links, the topology (roles,
 *                            timelines, servers, DNS, regions, fencing), attempts in flight, hosts down,
 *                            whether hosts answer (monitors, recovery probes)
 *   judgeEvent(one fact)   — what cannot wait for a tick: a server's error or notice, a connect deadline,
 *                            the checkout check, the check after login
 *
 * → verdicts (which connection, which kind, the evidence), hosts to mark down or up and to read again, host
 *   probes to run (on suspicion, and to see a down host answer again), the new fencing, health and
 *   replication states with their transitions, and a login's refusal.
 *
 * The rules sit beside it (kernel-rules, topology-rules, health-rules, routing-rules, replication-rules,
 * lifecycle-rules, checkout-rules, login-rules); what a verdict does is the verdict table's (verdicts.ts):
 * the host columns are read here, the connection columns by the one evictor. The scheduler gathers the facts
 * and carries the judgement out (guard/scheduler.ts act()).
 */
import type { SocketGlance } from '../kernel/sample'
import type { LoginDecision, LoginFacts } from '../topology/connect'
import type { HostState, ServerState } from '../topology/topology'
import type { TargetSessionAttrs } from '../topology/hosts'
import type { ReplicationReading } from '../topology/replication-query'
import { judgeCheckout } from './checkout-rules'
import { assessHealth, type HealthOptions, type HealthOutput, type HostHealthMemory } from './health-rules'
import { type ClassifierOptions, classify, type HostSummary, type ProbeRequest, type ProbeResult, type SocketInput, type SocketMemory } from './kernel-rules'
import { judgeLifecycle } from './lifecycle-rules'
import { judgeLogin } from './login-rules'
import { judgeReplication, type ReplicationOptions, type ReplicationOutput, type ReplicationMemory } from './replication-rules'
import { type DegradedHosts, noteDegradedHosts } from './routing-rules'
import { decideFencing, identitiesWanted, type TopologySocket, topologyVerdicts } from './topology-rules'
import { marksHostDown, type Verdict, VERDICTS } from './verdicts'

export type { Verdict }

export interface KernelFacts {
  sockets: SocketInput[]
  memory: ReadonlyMap<number, SocketMemory>
  /** Latest finished host probe per endpoint. */
  probes: ReadonlyMap<string, ProbeResult>
  options: ClassifierOptions
  /** Host health memory (per endpoint) and its options: health is judged on the same samples. */
  health: { memory: ReadonlyMap<string, HostHealthMemory>; options: HealthOptions }
  /** The connect planner's degraded hosts so far (routing-rules.ts). */
  degradedHosts: DegradedHosts
  /** Whether to weigh the samples with the kernel rules (false: every socket idle and quiet, health only). */
  classify: boolean
}

export interface TopologyFacts {
  hosts: ReadonlyMap<string, HostState>
  /** Servers by identity, as every source saw them (topology.ts): fencing is per server. */
  servers?: ReadonlyMap<string, ServerState>
  /** The primary as last decided (ties in fencing go to it). */
  primary: string | null
  targetSessionAttrs: TargetSessionAttrs
  singleRegion: boolean
  sockets: TopologySocket[]
  /** Whether to decide fencing: a monitor, a watch, an address check or a login observed a server since the last tick. */
  fencing: boolean
}

/** Per host, a replication reading the rule has not judged yet. */
export interface ReplicationFacts {
  readings: { key: string; reading: ReplicationReading | null; at: number; memory: ReplicationMemory | undefined }[]
  standbyExpected: boolean
  options: ReplicationOptions
}

export interface Facts {
  now: number
  /** Null when the scheduler skips the kernel part this tick (a quiet idle pool between its looks). */
  kernel: KernelFacts | null
  /** Null when nothing the topology rules read has changed since the last tick. */
  topology: TopologyFacts | null
  replication?: ReplicationFacts | null
  /**
   * Connection attempts still in flight: a host judged down now fails them at once; one past its deadline
   * (`deadlineMs` from `since`; 0: none) is over (its timer fires then, a tick also looks).
   */
  attempts?: { id: number; hostKey: string; since?: number; deadlineMs?: number }[]
  /** Configured hosts marked down: probed until one answers (their recovery). */
  down?: { key: string; host: string; port: number }[]
  /** Per host, the latest word on whether it answers (its monitor, a recovery probe) not judged yet. */
  reachability?: { key: string; reachable: boolean; why: string | null; at: number }[]
}


export interface Judgement {
  verdicts: Verdict[]
  /** Kernel memory to hand back next tick (null: keep none). */
  memory: Map<number, SocketMemory> | null
  /** Per remote endpoint, as this tick saw it (null: the kernel part did not run). */
  hosts: HostSummary[] | null
  /** Host probes to run: on kernel suspicion, a query waiting with no data. */
  probeRequests: ProbeRequest[]
  /** Configured hosts a verdict judged gone (first verdict's evidence): mark them down. */
  hostsDown: Map<string, string>
  /** Configured hosts to read again now (their role, their DNS answer): the table's recheckHost, and hosts judged down. */
  rechecks: Set<string>
  /** The new fencing decision (per host for the server it leads to, and per server), when it was decided. */
  fencing: { primary: string | null; fenced: Map<string, string>; fencedServers: Map<string, string> } | null
  /** Whether anything on the kernel side was suspect (stalls, probe requests): keep the full cadence, read /proc. */
  suspicion: boolean
  /** Host health of this tick's samples (null: no kernel pass), and the connect planner's degraded hosts. */
  health: HealthOutput | null
  degradedHosts: DegradedHosts | null
  /** Replication links judged this tick, per host. */
  replication: (ReplicationOutput & { key: string; at: number })[]
  /** Hosts down to probe now, to see them answer again. */
  recovery: { key: string; host: string; port: number }[]
  /**
   * Hosts whose monitor cannot reach them: marked down (new connections try them last, and wait for them
   * or fail fast) — not verdicts, so nothing is evicted and no attempt in flight is abandoned for it.
   */
  unreachable: Map<string, string>
  /** Hosts that answered again (their monitor, a recovery probe): marked up. */
  hostsUp: Set<string>
  /** Sessions whose server to read now (topology-rules.ts identitiesWanted). */
  identities: number[]
}

/**
 * Connection attempts still in flight to a host just judged down fail now, with the host's evidence,
 * instead of waiting out the kernel's SYN backoff or their deadline.
 */
export function attemptsToDownHosts(attempts: { id: number; hostKey: string }[], down: ReadonlyMap<string, string>, now: number): Verdict[] {
  return attempts.flatMap((a) => {
    const why = down.get(a.hostKey)
    return why === undefined ? [] : [{ id: a.id, kind: 'host-dead' as const, evidence: `attempt abandoned: ${a.hostKey} is down (${why})`, firstEvidenceAt: now }]
  })
}

export function judge(f: Facts): Judgement {
  const verdicts: Verdict[] = []
  const hostsDown = new Map<string, string>()
  const rechecks = new Set<string>()
  let memory: Map<number, SocketMemory> | null = null
  let hosts: HostSummary[] | null = null
  let probeRequests: ProbeRequest[] = []
  let suspicion = false
  let health: HealthOutput | null = null
  let degradedHosts: DegradedHosts | null = null

  if (f.kernel) {
    const k = f.kernel
    health = assessHealth({ now: f.now, sockets: k.sockets, memory: k.health.memory, options: k.health.options })
    degradedHosts = noteDegradedHosts({ now: f.now, sockets: k.sockets, health: health.hosts, memory: k.degradedHosts })
    if (k.classify) {
      const degraded = new Set(health.hosts.filter((h) => h.state === 'degraded').map((h) => h.endpoint))
      const out = classify({ now: f.now, sockets: k.sockets, memory: k.memory, probes: k.probes, options: k.options, degraded })
      memory = out.memory
      hosts = out.hosts
      probeRequests = out.probe
      suspicion = out.probe.length > 0 || out.hosts.some((h) => h.stalled > 0)
      const hostOf = new Map(k.sockets.map((s) => [s.id, s.hostKey]))
      for (const v of out.verdicts) {
        verdicts.push({ id: v.id, kind: v.kind, evidence: v.evidence, firstEvidenceAt: v.firstEvidenceAt })
        const key = hostOf.get(v.id)
        if (key === undefined) continue
        if (marksHostDown(v.kind, v.hostDead) && !hostsDown.has(key)) hostsDown.set(key, v.evidence)
        if (VERDICTS[v.kind].recheckHost) rechecks.add(key)
      }
    }
  }
  for (const key of hostsDown.keys()) rechecks.add(key)
  if (hostsDown.size > 0 && f.attempts) verdicts.push(...attemptsToDownHosts(f.attempts, hostsDown, f.now))
  for (const a of f.attempts ?? []) {
    if (!a.deadlineMs || a.since === undefined || verdicts.some((v) => v.id === a.id)) continue
    const v = judgeLifecycle({ kind: 'connect-deadline', since: a.since, deadlineMs: a.deadlineMs, at: f.now })
    if (v) verdicts.push({ id: a.id, ...v })
  }

  let fencing: Judgement['fencing'] = null
  let identities: number[] = []
  if (f.topology) {
    const t = f.topology
    let hostsNow = t.hosts
    let serversNow = t.servers ?? new Map<string, ServerState>()
    let primary = t.primary
    if (t.fencing) {
      fencing = decideFencing([...t.hosts.values()], t.primary, serversNow, f.now)
      primary = fencing.primary
      // The topology verdicts below see the fencing just decided.
      hostsNow = new Map([...t.hosts].map(([k, h]) => [k, { ...h, fenced: fencing!.fenced.get(k) ?? null }]))
      serversNow = new Map([...serversNow].map(([k, s]) => [k, { ...s, fenced: fencing!.fencedServers.get(k) ?? null }]))
    }
    const judged = new Set(verdicts.map((v) => v.id))
    const hostOf = new Map(t.sockets.map((s) => [s.id, s.hostKey]))
    for (const v of topologyVerdicts(hostsNow as Map<string, HostState>, t.sockets, t.targetSessionAttrs, primary, t.singleRegion, serversNow)) {
      if (judged.has(v.id)) continue
      verdicts.push({ id: v.id, kind: v.kind, evidence: v.evidence, firstEvidenceAt: f.now })
      if (VERDICTS[v.kind].recheckHost) rechecks.add(hostOf.get(v.id)!)
    }
    identities = identitiesWanted(hostsNow as Map<string, HostState>, t.sockets, serversNow)
  }

  const replication: Judgement['replication'] = []
  for (const r of f.replication?.readings ?? []) {
    // Judged at the reading's own time: the thresholds count time between the server's answers.
    const out = judgeReplication({ host: r.key, reading: r.reading, standbyExpected: f.replication!.standbyExpected, memory: r.memory, now: r.at, options: f.replication!.options })
    replication.push({ ...out, key: r.key, at: r.at })
  }

  // A host that answers is up again, unless a verdict just judged it gone.
  const unreachable = new Map<string, string>()
  const hostsUp = new Set<string>()
  for (const r of f.reachability ?? []) {
    if (!r.reachable) unreachable.set(r.key, r.why ?? 'not reachable')
    else if (!hostsDown.has(r.key)) hostsUp.add(r.key)
  }

  return { verdicts, memory, hosts, probeRequests, hostsDown, rechecks, fencing, suspicion, health, degradedHosts, replication, recovery: f.down ?? [], unreachable, hostsUp, identities }
}

/** A fact that cannot wait for a tick. */
export type EventFacts =
  /** The backend sent an ErrorResponse or a NoticeResponse (`connecting`: before the session was up). */
  | { kind: 'server-said'; now: number; id: number; hostKey: string; severity: string; code: string | undefined; message: string; needsWriter: boolean; connecting: boolean }
  /** A connection attempt's deadline passed. */
  | { kind: 'connect-deadline'; now: number; id: number; hostKey: string; since: number; deadlineMs: number }
  /** An idle client is about to be handed out: one TCP_INFO glance of its socket, or why it is gone. */
  | { kind: 'checkout'; now: number; id: number; glance: SocketGlance | undefined; gone: string | null }
  /** A session just logged in (topology/connect.ts). */
  | { kind: 'login'; now: number; id: number | null; login: LoginFacts }

export interface EventJudgement {
  verdicts: Verdict[]
  rechecks: Set<string>
  /** For a login: taken, or refused with why (the refusal is also a verdict, carried out in the login phase). */
  login: LoginDecision | null
}

export function judgeEvent(f: EventFacts): EventJudgement {
  const out: EventJudgement = { verdicts: [], rechecks: new Set(), login: null }
  switch (f.kind) {
    case 'server-said':
    case 'connect-deadline': {
      const v = judgeLifecycle(f.kind === 'server-said'
        ? { kind: 'server-error', severity: f.severity, code: f.code, message: f.message, needsWriter: f.needsWriter, at: f.now }
        : { kind: 'connect-deadline', since: f.since, deadlineMs: f.deadlineMs, at: f.now })
      if (!v) return out
      if (VERDICTS[v.kind].recheckHost) out.rechecks.add(f.hostKey)
      // A server error while connecting: pg fails the connect with the server's own error, nothing to evict.
      if (f.kind === 'server-said' && f.connecting) return out
      out.verdicts.push({ id: f.id, kind: v.kind, evidence: v.evidence, firstEvidenceAt: v.firstEvidenceAt, serverError: v.serverError })
      return out
    }
    case 'checkout': {
      const why = f.gone ?? judgeCheckout(f.glance)
      if (why !== null) out.verdicts.push({ id: f.id, kind: 'checkout-distrusted', evidence: `checkout check: ${why}`, firstEvidenceAt: f.now })
      return out
    }
    case 'login': {
      out.login = judgeLogin(f.login)
      if (!out.login.ok && f.id !== null) {
        const why = out.login.refuse === 'fenced' ? out.login.why : `${f.login.hostKey} is ${out.login.found}, wanted ${out.login.wanted}`
        out.verdicts.push({ id: f.id, kind: out.login.refuse === 'fenced' ? 'fenced' : 'wrong-role', evidence: `refused at login: ${why}`, firstEvidenceAt: f.now })
      }
      return out
    }
  }
}
