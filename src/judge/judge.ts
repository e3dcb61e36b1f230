/**
 * The judge, pure: facts in, decisions out. One call per scheduler tick; no I/O, no clock, no callbacks.
 *
 *   facts: kernel samples of pooled sockets (+ memory of the last tick, probe results),
 *          host states of the topology (roles, timelines, DNS, regions, fencing so far)
 *   decisions: verdicts (which connection, which kind, the evidence), probe requests, hosts to mark down
 *          and look at again, the new fencing
 *
 * The kernel rules (kernel-rules.ts) and the topology rules (topology-rules.ts) sit side by side; what a
 * verdict then does is the verdict table's business (verdicts.ts), applied by the one evictor.
 */
import { type ClassifierOptions, classify, type HostSummary, type ProbeRequest, type ProbeResult, type SocketInput, type SocketMemory } from './kernel-rules'
import { decideFencing, type TopologySocket, topologyVerdicts } from './topology-rules'
import type { HostState, ServerState } from '../topology/topology'
import type { TargetSessionAttrs } from '../topology/hosts'
import { VERDICTS, type VerdictKind } from './verdicts'

export interface KernelFacts {
  sockets: SocketInput[]
  memory: ReadonlyMap<number, SocketMemory>
  /** Latest finished probe per endpoint. */
  probes: ReadonlyMap<string, ProbeResult>
  options: ClassifierOptions
  /** Endpoints the health rule calls degraded: a stall there is decided by a probe. */
  degraded?: ReadonlySet<string>
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

export interface Facts {
  now: number
  /** Null when the scheduler skips the kernel part this tick (a quiet idle pool between its looks). */
  kernel: KernelFacts | null
  /** Null when nothing the topology rules read has changed since the last tick. */
  topology: TopologyFacts | null
}

export interface JudgedVerdict {
  /** The registry id of the connection. */
  id: number
  kind: VerdictKind
  evidence: string
  firstEvidenceAt: number
  /** The verdict rests on the server's own error to the client's holder: in use, it is retired (verdicts.ts actionFor). */
  serverError?: boolean
}

export interface Judgement {
  verdicts: JudgedVerdict[]
  /** Kernel memory to hand back next tick (null: keep none). */
  memory: Map<number, SocketMemory> | null
  /** Per remote endpoint, as this tick saw it (null: the kernel part did not run). */
  hosts: HostSummary[] | null
  probeRequests: ProbeRequest[]
  /** Configured hosts a verdict judged gone (first verdict's evidence): mark them down, look again. */
  hostsDown: Map<string, string>
  /** The new fencing decision (per host for the server it leads to, and per server), when it was decided. */
  fencing: { primary: string | null; fenced: Map<string, string>; fencedServers: Map<string, string> } | null
  /** Whether anything on the kernel side was suspect (stalls, probe requests): keep the full cadence, read /proc. */
  suspicion: boolean
}

/**
 * Connection attempts still in flight to a host just judged down fail now, with the host's evidence,
 * instead of waiting out the kernel's SYN backoff or their deadline.
 */
export function attemptsToDownHosts(attempts: { id: number; hostKey: string }[], down: ReadonlyMap<string, string>, now: number): JudgedVerdict[] {
  return attempts.flatMap((a) => {
    const why = down.get(a.hostKey)
    return why === undefined ? [] : [{ id: a.id, kind: 'host-dead' as const, evidence: `attempt abandoned: ${a.hostKey} is down (${why})`, firstEvidenceAt: now }]
  })
}

export function judge(f: Facts): Judgement {
  const verdicts: JudgedVerdict[] = []
  const hostsDown = new Map<string, string>()
  let memory: Map<number, SocketMemory> | null = null
  let hosts: HostSummary[] | null = null
  let probeRequests: ProbeRequest[] = []
  let suspicion = false

  if (f.kernel) {
    const out = classify({ now: f.now, ...f.kernel })
    memory = out.memory
    hosts = out.hosts
    probeRequests = out.probe
    suspicion = out.probe.length > 0 || out.hosts.some((h) => h.stalled > 0)
    const hostOf = new Map(f.kernel.sockets.map((s) => [s.id, s.hostKey]))
    // A host whose consensus says dead is down, whichever verdict each of its sockets got (the stalled
    // ones are zombies, the others host-dead); so is a host a verdict of its own marks down.
    const dead = new Set(out.hosts.filter((h) => h.dead).map((h) => h.endpoint))
    for (const v of out.verdicts) {
      verdicts.push({ id: v.id, kind: v.kind, evidence: v.evidence, firstEvidenceAt: v.firstEvidenceAt })
      const key = hostOf.get(v.id)
      if ((VERDICTS[v.kind].marksHostDown || dead.has(v.endpoint)) && key !== undefined && !hostsDown.has(key)) hostsDown.set(key, v.evidence)
    }
  }

  let fencing: Judgement['fencing'] = null
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
    for (const v of topologyVerdicts(hostsNow as Map<string, HostState>, t.sockets, t.targetSessionAttrs, primary, t.singleRegion, serversNow)) {
      if (!judged.has(v.id)) verdicts.push({ id: v.id, kind: v.kind, evidence: v.evidence, firstEvidenceAt: f.now })
    }
  }
  return { verdicts, memory, hosts, probeRequests, hostsDown, fencing, suspicion }
}
