/**
 * What the pool knows of its hosts — roles, timelines, system identity, reachability, DNS answers,
 * regions, fencing — kept up to date by the host monitors, the DNS loop and the pool's own sessions.
 * This module only gathers facts: it never judges a socket. Replication readings are kept as facts too; the
 * scheduler judges them (judge/replication-rules.ts) and writes the state back with `applyReplication`. Every change bumps `version` and emits
 * 'change'; the guard's scheduler then asks the judge (judge/topology-rules.ts) what follows, and writes
 * the fencing decision back with `applyFencing`.
 */
import { EventEmitter } from 'node:events'
import { isIP } from 'node:net'
import { lookup as dnsLookup } from 'node:dns/promises'
import { normalizeAddress } from '../kernel/proc-net-tcp'
import { callLookup } from '../pg/adapter'
import { HostMonitor, type HostObservation } from './host-monitor'
import { type HostReplication, type ReplicationReading, unknownReplication } from './replication-query'
import { type Attempt, type HostSpec, hostKey, type LoadBalanceHosts, planAttempts, type ServerRole, type TargetSessionAttrs } from './hosts'
import type { Regions } from './regions'

export interface HostState {
  key: string
  spec: HostSpec
  /** A DNS name (re-resolved), not an IP or a Unix socket directory. */
  isName: boolean
  role: ServerRole | null
  roleAt: number | null
  timeline: number | null
  /** pg_control_system().system_identifier, when readable: two servers of one cluster share it. */
  systemId: string | null
  /**
   * Which server answers under this host's name (host-monitor serverIdentity): two configured hosts with
   * the same value are one server reached twice (a VIP or proxy and its direct address), never a
   * split-brain. Null until a monitor read it.
   */
  serverId: string | null
  reachable: boolean | null
  error: string | null
  /** Why the host is considered down (monitor unreachable, kernel verdict), or null. */
  down: string | null
  /** Why the host is fenced (split-brain loser), or null. */
  fenced: string | null
  /** Current DNS answer for a name; null until resolved (or for IPs). */
  addresses: string[] | null
  region: string | null
  /**
   * The replication link as judged from the monitor's readings (judge/replication-rules.ts): on a standby
   * its walreceiver, on a primary its standbys. `unknown` with `why` where it cannot be read.
   */
  replication: HostReplication
}

const NOT_MONITORED = 'not monitored: host monitors run over TCP, for several hosts or a target_session_attrs other than any'

export type Lookup = (hostname: string) => Promise<string[]>

export const defaultLookup: Lookup = async (hostname) => (await dnsLookup(hostname, { all: true })).map((a) => a.address)

export interface TopologyOptions {
  hosts: HostSpec[]
  targetSessionAttrs: TargetSessionAttrs
  loadBalanceHosts: LoadBalanceHosts
  regions: Regions
  lookup: Lookup
  topologyIntervalMs: number
  dnsIntervalMs: number
  timeoutMs: number
  /** A client config for one host (monitors). */
  configFor(spec: HostSpec): Record<string, unknown>
}

export interface TopologyEvents {
  /** A host's state changed (role, timeline, reachability, fencing, DNS). */
  change: [HostState]
}

export class Topology extends EventEmitter<TopologyEvents> {
  readonly hosts = new Map<string, HostState>()
  primary: string | null = null
  /** Bumped on every change: the scheduler re-judges the topology only when it moved. */
  version = 0
  /**
   * Bumped when a monitor observed a host (role and timeline read together). Fencing is decided only
   * then: a session's role report carries no timeline, and a promoted standby reported primary before its
   * monitor read the new timeline would lose the tie to the old primary.
   */
  observations = 0
  /**
   * Per host key, the monitor's latest replication reading (null: the host could not be read) and when.
   * Facts for the replication rule; the judged state is `HostState.replication`.
   */
  readonly replicationReadings = new Map<string, { reading: ReplicationReading | null; at: number }>()
  private readonly monitors = new Map<string, HostMonitor>()
  private readonly timers = new Set<NodeJS.Timeout>()
  /** Polls in flight per host, and hosts to poll once more when theirs ends. */
  private readonly polls = new Map<string, Promise<void>>()
  private readonly pollAgain = new Set<string>()
  private stopped = false

  constructor(readonly options: TopologyOptions) {
    super()
    for (const spec of options.hosts) {
      const isName = !spec.host.startsWith('/') && isIP(spec.host) === 0
      this.hosts.set(hostKey(spec), {
        key: hostKey(spec), spec, isName, role: null, roleAt: null, timeline: null, systemId: null, serverId: null, reachable: null, error: null,
        down: null, fenced: null, addresses: null, region: options.regions.regionOf(spec.host, null),
        replication: unknownReplication('not read yet'),
      })
    }
    for (const h of this.hosts.values()) {
      if (!this.monitored || h.spec.host.startsWith('/')) h.replication = unknownReplication(NOT_MONITORED)
    }
  }

  /** Monitors run for several hosts or a role requirement; DNS is re-resolved for names. */
  get monitored(): boolean {
    return this.options.topologyIntervalMs > 0 && (this.hosts.size > 1 || this.options.targetSessionAttrs !== 'any')
  }

  start(): void {
    if (this.monitored) {
      for (const h of this.hosts.values()) {
        if (h.spec.host.startsWith('/')) continue
        const m = new HostMonitor(h.spec, () => this.options.configFor(h.spec), this.options.timeoutMs)
        this.monitors.set(h.key, m)
        this.loop(() => this.pollOne(h.key, m), this.options.topologyIntervalMs, 0)
      }
    }
    if (this.options.dnsIntervalMs > 0) {
      for (const h of this.hosts.values()) {
        if (h.isName) this.loop(() => this.resolve(h), this.options.dnsIntervalMs, 0.2)
      }
    }
  }

  stop(): void {
    this.stopped = true
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
    for (const m of this.monitors.values()) m.close()
  }

  /**
   * `singleRegion`: hosts outside the primary's region go last. `isDegraded`: the guard's health fact per
   * host key (judge/routing-rules.ts); degraded hosts go after the healthy ones that would do.
   */
  plan(singleRegion = false, random?: () => number, isDegraded: (hostKey: string) => boolean = () => false): Attempt[] {
    const home = this.primary ? this.hosts.get(this.primary)?.region ?? null : null
    return planAttempts(this.options.hosts, this.options.targetSessionAttrs, this.options.loadBalanceHosts, (spec) => {
      const h = this.hosts.get(hostKey(spec))
      const elsewhere = singleRegion && home !== null && h?.region != null && h.region !== home
      return { role: h?.role ?? undefined, down: Boolean(h?.down), fenced: Boolean(h?.fenced), elsewhere, degraded: isDegraded(hostKey(spec)) }
    }, random)
  }

  state(host: string, port: number): HostState | undefined {
    return this.hosts.get(`${host}:${port}`)
  }

  /** A pooled session reported its role (ParameterStatus): it also tells us about its host. */
  noteRole(key: string, role: ServerRole, at: number): void {
    const h = this.hosts.get(key)
    if (!h) return
    const changed = !h.role || h.role.inHotStandby !== role.inHotStandby || h.role.readOnly !== role.readOnly
    h.role = role
    h.roleAt = at
    h.reachable = true
    if (changed) this.changed(h)
  }

  /** The judge found the host dead: new connections try it last. A fact; `recheck` looks again. */
  markDown(key: string, why: string): void {
    const h = this.hosts.get(key)
    if (!h || h.down) return
    h.down = why
    this.changed(h)
  }

  /** A recovery probe got an answer: the host is up again (until the next verdict). */
  markUp(key: string): void {
    const h = this.hosts.get(key)
    if (!h || !h.down) return
    h.down = null
    this.changed(h)
  }

  /** Look at a host again now, instead of at the next poll: its DNS name and its monitor. */
  recheck(key: string): void {
    const h = this.hosts.get(key)
    if (!h || this.stopped) return
    if (h.isName) void this.resolve(h)
    const m = this.monitors.get(key)
    if (m) void this.pollOne(key, m)
  }

  /** The judge's fencing decision (judge/topology-rules.ts decideFencing), written back as facts. */
  applyFencing(primary: string | null, fenced: ReadonlyMap<string, string>): void {
    this.primary = primary
    for (const h of this.hosts.values()) {
      const why = fenced.get(h.key) ?? null
      if (why !== h.fenced) {
        h.fenced = why
        this.changed(h)
      }
    }
  }

  /** The replication rule's state for a host; a change of state (not of detail) is a change of the host. */
  applyReplication(key: string, replication: HostReplication): void {
    const h = this.hosts.get(key)
    if (!h) return
    const moved = h.replication.state !== replication.state
    h.replication = replication
    if (moved) this.changed(h)
  }

  /**
   * One poll of a host at a time (its monitor has one session): a recheck asked for while a poll runs —
   * several sessions' errors at once, the loop's own poll — runs once, after it, so what it reads is newer.
   */
  private pollOne(key: string, m: HostMonitor): Promise<void> {
    const running = this.polls.get(key)
    if (running) {
      this.pollAgain.add(key)
      return running
    }
    const poll = m.poll().then((obs) => {
      if (!this.stopped) this.observe(key, obs)
    }).finally(() => {
      this.polls.delete(key)
      if (this.pollAgain.delete(key) && !this.stopped) void this.pollOne(key, m)
    })
    this.polls.set(key, poll)
    return poll
  }

  private observe(key: string, obs: HostObservation): void {
    const h = this.hosts.get(key)!
    const before = JSON.stringify([h.role, h.timeline, h.reachable, h.down, h.systemId, h.serverId])
    h.reachable = obs.reachable
    h.error = obs.error ?? null
    if (obs.reachable) {
      h.role = obs.role ?? h.role
      h.roleAt = obs.at
      h.timeline = obs.timeline ?? h.timeline
      h.systemId = obs.systemId ?? h.systemId
      h.serverId = obs.serverId ?? h.serverId
      h.down = null
    } else if (!h.down) {
      h.down = `monitor: ${obs.error}`
    }
    if (obs.ip && !h.isName) h.region = this.options.regions.regionOf(h.spec.host, obs.ip)
    if (!obs.reachable) this.replicationReadings.set(key, { reading: null, at: obs.at })
    else if (obs.replication) this.replicationReadings.set(key, { reading: obs.replication, at: obs.at })
    this.observations++
    this.watchPromotion(h)
    if (JSON.stringify([h.role, h.timeline, h.reachable, h.down, h.systemId, h.serverId]) !== before) this.changed(h)
  }

  /**
   * A reachable standby gets a promotion watch (promotion-watch.ts): its promotion is observed the moment
   * it happens, so fencing the old primary does not wait for the next poll. Anything else ends the watch.
   */
  private watchPromotion(h: HostState): void {
    const m = this.monitors.get(h.key)
    if (!m || this.stopped) return
    if (h.reachable && h.role?.inHotStandby) {
      m.watch((obs) => {
        if (!this.stopped) this.observe(h.key, obs)
      })
    } else {
      m.unwatch()
    }
  }

  private async resolve(h: HostState): Promise<void> {
    let addresses: string[]
    try {
      // callLookup checks the hook's answer (an array of IPs) and turns a non-Error rejection into a coded one.
      addresses = (await callLookup(this.options.lookup, h.spec.host)).map(normalizeAddress).sort()
      // An empty answer is no answer (dns.lookup says ENOTFOUND): taken as one, every socket would be stale.
      if (addresses.length === 0) throw Object.assign(new Error(`no address for ${h.spec.host}`), { code: 'ENOTFOUND' })
    } catch (err) {
      // Keep the last good answer: a resolver hiccup is no failover.
      const e = err as { message?: unknown; code?: unknown }
      h.error = `DNS: ${String(e?.message ?? err)}${typeof e?.code === 'string' ? ` (${e.code})` : ''}`
      return
    }
    if (this.stopped || JSON.stringify(addresses) === JSON.stringify(h.addresses)) return
    const moved = h.addresses !== null
    h.addresses = addresses
    h.region = this.options.regions.regionOf(h.spec.host, addresses[0] ?? null)
    if (moved) {
      // The name points elsewhere: the monitor must follow it.
      this.monitors.get(h.key)?.drop()
    }
    this.changed(h)
  }

  /** Runs `fn` now and then every `everyMs` (± jitter), never overlapping, timers unref'd. */
  private loop(fn: () => Promise<void>, everyMs: number, jitter: number): void {
    const run = (): void => {
      if (this.stopped) return
      void fn().finally(() => {
        if (this.stopped) return
        const t = setTimeout(() => {
          this.timers.delete(t)
          run()
        }, everyMs * (1 - jitter + 2 * jitter * Math.random()))
        t.unref()
        this.timers.add(t)
      })
    }
    run()
  }

  private changed(h: HostState): void {
    this.version++
    this.emit('change', { ...h })
  }
}
