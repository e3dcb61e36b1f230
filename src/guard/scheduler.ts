/**
 * The one loop, and the one place a judgement is carried out. Each tick gathers facts — kernel samples of
 * the pooled sockets (through the kernel port), /proc rows when due, host probe results, the topology's
 * host and server states, replication readings, attempts in flight, hosts down — asks the judge, and
 * carries out what it decided (act): verdicts to the one evictor, hosts to mark down and read again, host
 * probes to run, fencing, health and replication states written back and reported. Facts that cannot wait
 * for a tick (a server's error, a connect deadline, the checkout check, the check after login) are judged
 * by judgeEvent and carried out here too (decide). Topology loops and finished probes only update facts and
 * `wake()` the scheduler: a tick runs once the current call stack is done, never inside another tick.
 */
import type { ResolvedGuardOptions } from '../options'
import { HEALTH_DEFAULTS, type HealthTransition, type HostHealth, type HostHealthMemory } from '../judge/health-rules'
import { type DegradedHosts, isDegraded } from '../judge/routing-rules'
import { REPLICATION_DEFAULTS, type ReplicationMemory, type ReplicationTransition } from '../judge/replication-rules'
import { type EventFacts, type EventJudgement, type Facts, type Judgement, judge, judgeEvent, type KernelFacts, type ReplicationFacts, type TopologyFacts } from '../judge/judge'
import type { HostSummary, SocketInput, SocketMemory } from '../judge/kernel-rules'
import { normalizeAddress, type TcpRow } from '../kernel/proc-net-tcp'
import type { KernelPort } from '../kernel/port'
import { sampleFromRow } from '../kernel/sample'
import { TcpState } from '../kernel/tcp-info'
import { fdOf, hasQueryInFlight } from '../pg/internals'
import type { HostReading, Topology } from '../topology/topology'
import { afterPass, type CadenceState, initialCadence, planPass } from './cadence'
import { endpointOf, type Evictor } from './evictor'
import type { HostProbes } from './host-probes'
import { type ForeignSocket, foreignSockets } from './process-view'
import type { ConnRecord, Registry } from './registry'

export interface PassReport {
  durationMs: number
  sockets: number
  /** TCP retransmissions and newly unanswered keepalive probes seen since the previous pass. */
  retransmits: number
  keepaliveProbes: number
  /** Whether this pass read /proc/net/tcp (the slow cross-check), and what it cost. */
  crossCheck: boolean
  crossCheckMs: number
}

export interface SchedulerDeps {
  registry: Registry
  kernel: KernelPort
  options: ResolvedGuardOptions
  topology: Topology
  singleRegion: boolean
  evictor: Evictor
  hostProbes: HostProbes
  /** Runs at the start of every timer tick (cheap checks that need a clock, e.g. binding metrics late). */
  beforeTick?(): void
  /** A host's health changed (healthy <-> degraded), with the evidence. */
  onHealth?(t: HealthTransition): void
  /** A host's replication link turned lost, or ok again, with the evidence. */
  onReplication?(t: ReplicationTransition): void
  /** Read the server a session reached (the judge asked: identitiesWanted); marks it asked first. */
  readIdentity?(rec: ConnRecord): void
  onPass(report: PassReport): void
}

export class Scheduler {
  /** Per remote endpoint, as the last kernel pass saw it. */
  hosts: HostSummary[] = []
  /** From the last /proc cross-check. */
  foreign: ForeignSocket[] = []
  /** Per endpoint: healthy or degraded, RTT, retransmit ratio, queued bytes (a state, never an eviction). */
  health: HostHealth[] = []
  private healthMemory = new Map<string, HostHealthMemory>()
  /** Per configured host key: when it was last seen degraded (judge/routing-rules.ts), for the connect planner. */
  private degradedHosts: DegradedHosts = new Map()
  /** Per host key: the rule's memory, and the time of the reading it last judged. */
  private replicationMemory = new Map<string, { memory: ReplicationMemory; at: number }>()
  private seenReplicationObservations = 0
  private readonly reachabilitySeen = new Map<string, HostReading>()
  /** TCP_INFO is the per-tick detector; without it, /proc rows are. */
  readonly sampling: boolean
  private memory = new Map<number, SocketMemory>()
  private cadence: CadenceState
  private procRows: Map<number, TcpRow> | null = null
  /** The same rows by 4-tuple, for sockets whose inode could not be read. */
  private procRowsByTuple: Map<string, TcpRow> | null = null
  private seenTopology = -1
  private seenRegistry = -1
  private seenObservations = 0
  private timer: NodeJS.Timeout | undefined
  private ticking = false
  private woken = false
  private inWake = false
  private wakeKernel = false
  private wakeCrossCheck = false
  private stopped = false

  constructor(private readonly d: SchedulerDeps) {
    this.sampling = d.kernel.samplingUnavailable() === null
    this.cadence = initialCadence(Date.now())
  }

  start(): void {
    if (this.d.options.checkIntervalMs === 0) return
    this.timer = setInterval(() => {
      this.d.beforeTick?.()
      this.tick()
    }, this.d.options.checkIntervalMs)
    this.timer.unref()
  }

  stop(): void {
    this.stopped = true
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
  }

  /** Whether new connections should try this configured host ("host:port") after the healthy ones. */
  isDegraded(hostKey: string, now = Date.now()): boolean {
    return this.degradedHosts.size > 0 && isDegraded(this.degradedHosts, hostKey, now)
  }

  /**
   * Facts changed (a host's state, a probe result, a role report): tick as soon as the current call stack
   * is done. `kernel`: also look at the kernel now, whatever the cadence (a failed probe is acted on at
   * once); `crossCheck`: and read /proc too (guard.check({ crossCheck }) called inside a tick).
   */
  wake(kernel = false, crossCheck = false): void {
    this.wakeKernel ||= kernel || crossCheck
    this.wakeCrossCheck ||= crossCheck
    if (this.woken || this.stopped) return
    this.woken = true
    const run = (): void => {
      this.woken = false
      const force = this.wakeKernel
      const crossCheck = this.wakeCrossCheck
      this.wakeKernel = false
      this.wakeCrossCheck = false
      this.inWake = true
      try {
        this.tick(Date.now(), force ? { pass: true, crossCheck } : { kernel: false })
      } finally {
        this.inWake = false
      }
    }
    // A wake-up asked for by a wake-up's own tick waits for the event loop (setImmediate): facts that keep
    // changing can never starve I/O and timers with a chain of microtasks.
    if (this.inWake) setImmediate(run).unref()
    else queueMicrotask(run)
  }

  /**
   * One tick. `pass`: a kernel pass whatever the cadence; `crossCheck`: the /proc cross-check whatever cadence and
   * budget; `kernel: false`: the topology part only (a wake-up for changed host facts).
   */
  tick(now = Date.now(), force: { pass?: boolean; crossCheck?: boolean; kernel?: boolean } = {}): void {
    if (this.stopped) return
    // Inside a tick (an event listener called back from it): once it is done, with what was asked.
    if (this.ticking) return this.wake(force.pass, force.crossCheck)
    this.ticking = true
    try {
      this.run(now, force)
    } finally {
      this.ticking = false
    }
  }

  /** A fact that cannot wait for a tick, judged and carried out now. */
  decide(f: EventFacts): EventJudgement {
    const j = judgeEvent(f)
    const now = f.now
    for (const key of j.rechecks) this.d.topology.recheck(key)
    for (const v of j.verdicts) {
      const rec = this.d.registry.records().find((r) => r.id === v.id)
      if (rec) this.d.evictor.evict(rec, v, now, f.kind === 'login')
    }
    return j
  }

  /** decide() for the checkout check, on the hot path: the record is at hand, no lookup. */
  decideCheckout(rec: ConnRecord, now: number): boolean {
    const fd = fdOf(rec.socket)
    const j = judgeEvent({ kind: 'checkout', now, id: rec.id, glance: fd === undefined ? undefined : this.d.kernel.glance(fd), gone: rec.goneReason })
    if (j.verdicts.length === 0) return true
    this.d.evictor.evict(rec, j.verdicts[0], now)
    return false
  }

  private run(now: number, force: { pass?: boolean; crossCheck?: boolean; kernel?: boolean }): void {
    const started = performance.now()
    const o = this.d.options
    const records = this.d.registry.records().filter((r) => r.verdict === null)
    const live = records.filter((r) => r.state === 'idle' || r.state === 'in-use')
    const connecting = records.filter((r) => r.state === 'connecting')
    // The kernel watches every TCP socket the pool has, logins still under way included (their startup or
    // authentication sent, nothing back: the same rules apply).
    // A connecting socket without an fd has not started (a DNS lookup, an async password): nothing to see yet.
    const sockets = [...live, ...connecting.filter((r) => fdOf(r.socket) !== undefined)].filter((r) => r.socket && r.transport === 'tcp')

    let kernel: KernelFacts | null = null
    let report: PassReport | undefined
    let inputs: SocketInput[] = []
    let cadenceInput = { now, inFlight: false, sampling: this.sampling, forcedPass: force.pass ?? false, forcedProc: force.crossCheck ?? false }
    let readProc = false
    let procScanMs = 0
    if (force.kernel === false) {
      // a topology wake-up: the kernel part keeps its own cadence
    } else if (sockets.length === 0) {
      this.memory.clear()
      this.hosts = []
    } else {
      const flying = new Set(sockets.filter((r) => r.state === 'connecting' || hasQueryInFlight(r.client)))
      cadenceInput = { ...cadenceInput, inFlight: flying.size > 0 }
      const plan = planPass(this.cadence, o, cadenceInput)
      if (plan.pass) {
        readProc = plan.readProc
        if (readProc) procScanMs = this.scanProc(sockets)
        let retransmits = 0
        let keepaliveProbes = 0
        inputs = sockets.map((rec) => {
          const input = this.observe(rec, readProc, flying.has(rec))
          const before = rec.kernel
          const after = input.sample
          if (before && after) {
            if (after.totalRetrans !== null && before.totalRetrans !== null) retransmits += Math.max(0, after.totalRetrans - before.totalRetrans)
            keepaliveProbes += Math.max(0, after.probes - before.probes)
          }
          this.d.registry.noteSample(rec, after ?? null)
          return input
        })
        report = { durationMs: 0, sockets: sockets.length, crossCheck: readProc, crossCheckMs: procScanMs, retransmits, keepaliveProbes }
        // Every socket idle and quiet: nothing for the kernel rules to weigh (health still looks at the samples).
        const weigh = flying.size > 0 || this.cadence.suspicion || !inputs.every(quiet)
        kernel = {
          sockets: inputs, memory: this.memory, probes: this.d.hostProbes.results, options: o, classify: weigh,
          health: { memory: this.healthMemory, options: HEALTH_DEFAULTS }, degradedHosts: this.degradedHosts,
        }
      }
    }

    const facts: Facts = {
      now, kernel, topology: this.topologyFacts(live), replication: this.replicationFacts(),
      attempts: connecting.map((r) => ({ id: r.id, hostKey: r.hostKey, since: r.createdAt, deadlineMs: this.d.registry.connectDeadlineMs() })),
      down: [...this.d.topology.hosts.values()]
        // Discovered standbys are watched, never connected to by the pool: nothing waits for them.
        .filter((h) => h.down !== null && !h.spec.host.startsWith('/') && h.discoveredFrom === null)
        .map((h) => ({ key: h.key, host: h.spec.host, port: h.spec.port })),
      reachability: this.reachabilityFacts(),
    }
    const j = judge(facts)
    if (kernel) {
      // Not weighed (every socket idle and quiet): no memory, no summaries, nothing suspect or unusual.
      this.memory = j.memory ?? new Map()
      this.hosts = j.hosts ?? []
      this.cadence = afterPass(this.cadence, cadenceInput, { readProc, procCostMs: procScanMs, suspicion: j.suspicion, unusual: j.suspicion || inputs.some((i) => !quiet(i)) })
    }
    this.act(j, [...live, ...connecting], now)
    if (report) {
      report.durationMs = performance.now() - started
      this.d.onPass(report)
    }
  }

  /** Carries out a judgement: the one place the judge's decisions become acts. */
  private act(j: Judgement, live: ConnRecord[], now: number): void {
    const o = this.d.options
    const t = this.d.topology
    if (j.fencing) t.applyFencing(j.fencing.primary, j.fencing.fencedServers)
    const byId = new Map(live.map((r) => [r.id, r]))
    for (const v of j.verdicts) {
      const rec = byId.get(v.id)
      if (rec) this.d.evictor.evict(rec, v, now)
    }
    for (const id of j.identities) {
      const rec = byId.get(id)
      if (rec) this.d.readIdentity?.(rec)
    }
    for (const [key, why] of j.hostsDown) t.markDown(key, why)
    for (const [key, why] of j.unreachable) t.markDown(key, why)
    for (const key of j.hostsUp) t.markUp(key)
    for (const key of j.rechecks) t.recheck(key)
    for (const p of j.probeRequests) {
      const rec = live.find((r) => endpointOf(r) === p.endpoint)
      if (!rec) continue
      const target = {
        endpoint: p.endpoint, ip: rec.remoteAddress ?? rec.configuredHost, port: rec.remotePort ?? rec.configuredPort,
        configuredHost: rec.configuredHost, hostKey: rec.hostKey, pooler: rec.pooler === true,
      }
      this.d.hostProbes.request(target, p.urgent ? o.stallMs : o.probeIntervalMs, now)
    }
    if (j.health) this.applyHealth(j)
    for (const r of j.replication) {
      this.replicationMemory.set(r.key, { memory: r.memory, at: r.at })
      t.applyReplication(r.key, r.replication)
      if (r.transition) this.d.onReplication?.(r.transition)
    }
    // Hosts judged down are probed every recoveryIntervalMs until one answers (new connects fail at once meanwhile).
    for (const h of j.recovery) {
      this.d.hostProbes.recover(h.key, { endpoint: h.key, ip: h.host, port: h.port, configuredHost: h.host, pooler: t.hosts.get(h.key)?.pooler === true }, o.recoveryIntervalMs, now)
    }
  }

  /** Host health states (reported, never acted on by the evictor) and the planner's degraded hosts. */
  private applyHealth(j: Judgement): void {
    const out = j.health!
    // An endpoint's memory (its baseline) lives as long as the pool holds any client to it.
    let held: Set<string> | undefined
    for (const key of out.memory.keys()) {
      if (out.hosts.some((h) => h.endpoint === key)) continue
      held ??= new Set(this.d.registry.records().map(endpointOf))
      if (!held.has(key)) out.memory.delete(key)
    }
    this.healthMemory = out.memory
    this.health = out.hosts
    if (j.degradedHosts) this.degradedHosts = j.degradedHosts
    for (const t of out.transitions) this.d.onHealth?.(t)
  }

  /** The topology's facts, when anything the topology rules read has moved since they last ran. */
  private topologyFacts(live: ConnRecord[]): TopologyFacts | null {
    const t = this.d.topology
    const reg = this.d.registry
    if (t.version === this.seenTopology && reg.version === this.seenRegistry && t.observations === this.seenObservations) return null
    const observed = t.observations !== this.seenObservations
    this.seenTopology = t.version
    this.seenRegistry = reg.version
    this.seenObservations = t.observations
    if (live.length === 0 && !observed) return null
    return {
      hosts: t.hosts,
      servers: t.servers,
      primary: t.primary,
      targetSessionAttrs: t.options.targetSessionAttrs,
      singleRegion: this.d.singleRegion,
      fencing: observed,
      sockets: live.map((r) => ({
        id: r.id, hostKey: r.hostKey, ip: r.remoteAddress, role: r.reportedRole, roleAt: r.reportedRoleAt, region: r.region,
        serverId: r.server?.id ?? null, loginAt: r.serverAt, pooler: r.pooler === true, identityAsked: r.identityAsked,
      })),
    }
  }

  /** Whether hosts answer (monitor polls, recovery probes), each word judged once. */
  private reachabilityFacts(): NonNullable<Facts['reachability']> {
    const out: NonNullable<Facts['reachability']> = []
    for (const [key, r] of this.d.topology.reachability) {
      if (this.reachabilitySeen.get(key) === r) continue
      this.reachabilitySeen.set(key, r)
      out.push({ key, ...r })
    }
    return out
  }

  /** Replication readings the rule has not judged yet (one judgement per monitor poll). */
  private replicationFacts(): ReplicationFacts | null {
    const t = this.d.topology
    if (t.observations === this.seenReplicationObservations) return null
    this.seenReplicationObservations = t.observations
    const readings: ReplicationFacts['readings'] = []
    for (const [key, { reading, at }] of t.replicationReadings) {
      const seen = this.replicationMemory.get(key)
      if (seen && seen.at === at) continue // nothing new from this host
      readings.push({ key, reading, at, memory: seen?.memory })
    }
    if (readings.length === 0) return null
    return {
      readings,
      standbyExpected: t.hosts.size > 1,
      options: { lostMs: this.d.options.replicationLostMs, recoverMs: REPLICATION_DEFAULTS.recoverMs.value, slackMs: REPLICATION_DEFAULTS.slackMs.value },
    }
  }

  private observe(rec: ConnRecord, procFresh: boolean, queryInFlight: boolean): SocketInput {
    const base = { id: rec.id, endpoint: endpointOf(rec), hostKey: rec.hostKey, inUse: rec.state !== 'idle', queryInFlight }
    // The fd from the live handle: a closed handle (fd gone) is what "vanished" is made of.
    const fd = fdOf(rec.socket)
    if (fd === undefined) return { ...base, sample: undefined, gone: 'its socket handle is closed' }
    if (rec.goneReason) return { ...base, sample: undefined, gone: rec.goneReason }
    if (this.sampling) {
      const sample = this.d.kernel.sample(fd)
      return { ...base, sample, gone: sample ? null : 'TCP_INFO failed on its fd' }
    }
    const row = rec.inode !== null ? this.procRows?.get(rec.inode) : this.procRowsByTuple?.get(tupleOf(rec.localAddress, rec.localPort, rec.remoteAddress, rec.remotePort))
    if (row) return { ...base, sample: sampleFromRow(row), gone: null }
    return { ...base, sample: undefined, gone: procFresh && rec.inode !== null ? 'its inode is not in /proc/net/tcp' : null }
  }

  /** The slow cross-check: /proc/net/tcp{,6} by inode, fd identity, and the process-wide foreign sockets; returns its cost, ms. */
  private scanProc(recs: ConnRecord[]): number {
    const k = this.d.kernel
    // Only this process's sockets matter here; filtering before rows are built keeps a 20k-socket host cheap.
    // A socket whose inode could not be read (no /proc/self/fd) is found by its 4-tuple instead.
    const mine = k.inodesOf('self')
    const byTuple = recs.some((r) => r.inode === null)
    const table = k.table((inode) => byTuple || mine.has(inode))
    this.procRows = new Map(table.rows.map((r) => [r.inode, r]))
    this.procRowsByTuple = byTuple ? new Map(table.rows.map((r) => [tupleOf(r.localAddress, r.localPort, r.remoteAddress, r.remotePort), r])) : null
    for (const rec of recs) {
      const fd = fdOf(rec.socket)
      if (fd !== undefined && rec.inode !== null && k.inodeOf(fd) !== rec.inode) this.d.registry.noteGone(rec, `fd ${fd} now belongs to another socket`)
      else if (rec.inode !== null && !this.procRows.has(rec.inode) && (!this.sampling || rec.kernel?.state === TcpState.CLOSE)) {
        this.d.registry.noteGone(rec, 'its inode is not in /proc/net/tcp')
      }
    }
    this.foreign = foreignSockets(table.rows, mine)
    return table.durationMs
  }
}

function quiet(i: SocketInput): boolean {
  const k = i.sample
  return i.gone === null && k !== undefined && k.state === TcpState.ESTABLISHED && !k.outstanding && k.probes === 0 && k.retransmits === 0
}

function tupleOf(localAddress: string | null, localPort: number | null, remoteAddress: string | null, remotePort: number | null): string {
  return `${normalizeAddress(localAddress ?? '')}:${localPort}>${normalizeAddress(remoteAddress ?? '')}:${remotePort}`
}
