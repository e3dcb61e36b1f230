/**
 * What the pool knows of its hosts and of the servers behind them — roles, timelines, system identity,
 * reachability, DNS answers, where each address leads now, regions, fencing — kept up to date by the host
 * monitors, the DNS loop, address checks and the pool's own sessions.
 *
 * Hosts are addresses (configured, or standbys discovered from a primary's pg_stat_replication); servers
 * are what answers behind them, by identity (identity.ts). Behind a VIP, a load balancer or a Kubernetes
 * Service one address leads to different servers over time: each fresh connection (a login, an address
 * check) records where it led (`leadsTo`, `routes`), and fencing is decided per server.
 * This module only gathers facts: it never judges a socket. Replication readings are kept as facts too; the
 * scheduler judges them (judge/replication-rules.ts) and writes the state back with `applyReplication`. Every change bumps `version` and emits
 * 'change'; the guard's scheduler then asks the judge (judge/topology-rules.ts) what follows, and writes
 * the fencing decision back with `applyFencing`.
 */
import { EventEmitter } from 'node:events'
import { isIP } from 'node:net'
import { lookup as dnsLookup } from 'node:dns/promises'
import { normalizeAddress } from '../kernel/proc-net-tcp'
import { callLookup } from './lookup'
import { type AddressCheckResult, checkAddress } from './address-check'
import { HostMonitor, type HostObservation } from './host-monitor'
import { IdentityReader, type SessionIdentity } from './identity'
import { type HostReplication, type ReplicationReading, unknownReplication } from './replication-query'
import { type Attempt, type HostSpec, hostKey, type LoadBalanceHosts, planAttempts, type ServerRole, type TargetSessionAttrs } from './hosts'
import type { Regions } from './regions'

/** Whether a host answered its monitor (or a recovery probe), when, and why not. */
export interface HostReading {
  reachable: boolean
  why: string | null
  at: number
}

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
  /**
   * Where a fresh connection to this address led last (a pooled login or an address check): a server id.
   * The monitor's `serverId` is where its own, long-lived connection is pinned; behind a VIP the two part at
   * a failover.
   */
  leadsTo: string | null
  leadsToAt: number | null
  /** When the monitor last read `serverId`. The newer of the two is where the host leads now (currentServerOf). */
  serverIdAt: number | null
  /** Recent fresh connections and the server each reached, oldest first (at most ROUTES_KEPT, ROUTES_MS). */
  routes: Route[]
  /**
   * Every server this address has been seen leading to, first seen first (fresh connections and the
   * monitor; at most SERVERS_SEEN_KEPT): more than one means the sessions to it may be on different servers.
   */
  serversSeen: string[]
  /** A pooler answers at this address (a session's backend is not its own, and changes per transaction). */
  pooler: boolean | null
  /**
   * Not configured: a standby learnt from this host's pg_stat_replication ("host:port"). Watched for a
   * promotion, never handed to the pool's connections.
   */
  discoveredFrom: string | null
}

/** A fresh connection to an address, and the server it reached. */
export interface Route {
  server: string
  at: number
}

/** A server, by identity, as every source saw it last. */
export interface ServerState {
  /** serverIdentity() (system identifier, port, postmaster start), or `host:<key>` where a monitor could not read it. */
  id: string
  systemId: string | null
  /** Where the server says sessions arrive (inet_server_addr, inet_server_port): its own address. */
  address: string | null
  port: number | null
  role: ServerRole | null
  timeline: number | null
  reachable: boolean | null
  /** The last observation of any source, and the last one by a source that keeps looking (monitor, promotion watch, address check). */
  seenAt: number
  liveAt: number | null
  /** Why it is fenced (a server of its cluster on a higher timeline accepts writes), or null. */
  fenced: string | null
  /**
   * Seen as a standby: every transaction id below this was in the WAL it had replayed (the highest snapshot
   * xmax read while it was one, the last just before its promotion when its watch saw it). Null: never seen
   * as a standby. With `newFrom` (the first xmax read after its promotion: ids from there on are its own),
   * what lets an in-doubt commit of the old primary be looked up on it (guard/in-doubt.ts).
   */
  replayedBelow: string | null
  newFrom: string | null
  /** `newFrom` was read by the promotion watch in the round trip that saw the promotion (not at a later poll). */
  newFromAtPromotion: boolean
}

/**
 * The server a host leads to now: the newer of its last fresh connection's (a login, an address check, its
 * monitor reconnecting) and its monitor's reading; the host itself where neither identified one.
 */
export function currentServerOf(h: HostState | undefined): string | null {
  if (!h) return null
  if (h.leadsTo !== null && (h.serverId === null || (h.leadsToAt ?? 0) >= (h.serverIdAt ?? 0))) return h.leadsTo
  return h.serverId ?? `host:${h.key}`
}

/** A host nothing has been observed of yet: configured (`discoveredFrom` null), or a standby of `discoveredFrom`. */
function newHost(spec: HostSpec, isName: boolean, region: string | null, discoveredFrom: string | null): HostState {
  return {
    key: hostKey(spec), spec, isName, role: null, roleAt: null, timeline: null, systemId: null, serverId: null, reachable: null, error: null,
    down: null, fenced: null, addresses: null, region, replication: unknownReplication('not read yet'),
    leadsTo: null, leadsToAt: null, serverIdAt: null, routes: [], serversSeen: [], pooler: null, discoveredFrom,
  }
}

/** Whether any server or host is fenced (the Topology's own state, or the judge's fencing of this tick). */
export function anyFenced(hosts: ReadonlyMap<string, HostState>, servers: ReadonlyMap<string, ServerState>): boolean {
  for (const s of servers.values()) if (s.fenced) return true
  for (const h of hosts.values()) if (h.fenced) return true
  return false
}

/** Routes kept per host: enough to tell an address that moved from one that balances over several servers. */
export const ROUTES_KEPT = 16
export const SERVERS_SEEN_KEPT = 8
export const ROUTES_MS = 60_000
/** Servers no host leads to any more are forgotten after this long without an observation. */
const SERVER_FORGET_MS = 10 * 60_000
/** A login lists a primary's standbys at most this often (address checks always do). */
const STANDBYS_EVERY_MS = 30_000
/** A discovered standby is polled this often (its promotion watch reports a promotion at once). */
const DISCOVERED_POLL_MS = 5_000

const NOT_MONITORED = 'not monitored: host monitors run over TCP, for several hosts or a target_session_attrs other than any'

export type Lookup = (hostname: string) => Promise<string[]>

export const defaultLookup: Lookup = async (hostname) => (await dnsLookup(hostname, { all: true })).map((a) => a.address)

export interface TopologyOptions {
  hosts: HostSpec[]
  /** How often each configured TCP address is checked on a fresh connection while the pool holds sockets there; 0 = never. */
  addressCheckIntervalMs?: number
  /** Learn a primary's standbys from pg_stat_replication and watch them for a promotion. */
  discoverStandbys?: boolean
  /** Whether the pool holds sockets to this configured host now (address checks run only then). */
  holdsSocketsTo?(key: string): boolean
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
  /** Configured hosts first (in list order), then discovered ones. */
  readonly hosts = new Map<string, HostState>()
  readonly servers = new Map<string, ServerState>()
  /** Shared by logins and address checks: whether pg_control_*() may be called here. */
  readonly identity = new IdentityReader()
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
  /**
   * Per host key, the latest word on whether the host answers — its monitor's poll, or a recovery probe's
   * answer — and when. Facts: the judge marks a host down or up from them (judge.ts, `reachability`).
   */
  readonly reachability = new Map<string, HostReading>()
  private readonly monitors = new Map<string, HostMonitor>()
  private readonly standbysAskedAt = new Map<string, number>()
  private readonly timers = new Set<NodeJS.Timeout>()
  /** Polls in flight per host, and hosts to poll once more when theirs ends. */
  private readonly polls = new Map<string, Promise<void>>()
  private readonly pollAgain = new Set<string>()
  private stopped = false

  constructor(readonly options: TopologyOptions) {
    super()
    for (const spec of options.hosts) {
      const isName = !spec.host.startsWith('/') && isIP(spec.host) === 0
      this.hosts.set(hostKey(spec), newHost(spec, isName, options.regions.regionOf(spec.host, null), null))
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
        if (!h.spec.host.startsWith('/')) this.monitor(h, this.options.topologyIntervalMs)
      }
    }
    if (this.options.dnsIntervalMs > 0) {
      for (const h of this.hosts.values()) {
        if (h.isName) this.loop(() => this.resolve(h), this.options.dnsIntervalMs, 0.2)
      }
    }
    const every = this.options.addressCheckIntervalMs ?? 0
    if (every > 0) {
      for (const h of this.hosts.values()) {
        if (!h.spec.host.startsWith('/')) this.loop(() => this.checkAddressOf(h, every), every, 0.2)
      }
    }
  }

  /** A monitor for `h`, polled every `everyMs`. */
  private monitor(h: HostState, everyMs: number): void {
    const m = new HostMonitor(h.spec, () => this.options.configFor(h.spec), this.options.timeoutMs)
    this.monitors.set(h.key, m)
    this.loop(() => this.pollOne(h.key, m), everyMs, 0)
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

  /**
   * A pooled session reported its role (ParameterStatus): it also tells us about its host and, when the
   * session's server is known (`serverId`, read at login), about that server — behind a VIP the host's
   * other sessions may be on another server.
   */
  noteRole(key: string, role: ServerRole, at: number, serverId: string | null = null): void {
    const h = this.hosts.get(key)
    if (!h) return
    const sid = serverId ?? this.currentServer(h)
    const server = sid === null ? undefined : this.servers.get(sid)
    if (server) {
      const moved = !server.role || server.role.inHotStandby !== role.inHotStandby || server.role.readOnly !== role.readOnly
      server.role = role
      server.reachable = true
      if (moved) {
        this.version++
        this.observations++
      }
    }
    // The host's own role is its current server's: a session pinned elsewhere does not speak for it.
    if (serverId !== null && h.leadsTo !== null && serverId !== h.leadsTo) return
    const changed = !h.role || h.role.inHotStandby !== role.inHotStandby || h.role.readOnly !== role.readOnly
    h.role = role
    h.roleAt = at
    h.reachable = true
    if (changed) this.changed(h)
  }

  /**
   * A pooled client logged in to `key` and read its session's identity: a fresh connection, so it also
   * says where the address leads now.
   */
  observeLogin(key: string, identity: SessionIdentity, at: number): void {
    const h = this.hosts.get(key)
    if (!h) return
    this.fresh(h, identity, at, false)
  }

  /**
   * Whether the next login to `key` should also list the primary's standbys (about 1 ms more on that one
   * login): the first login, then at most every STANDBYS_EVERY_MS. Address checks list them every time.
   */
  wantsStandbys(key: string, now = Date.now()): boolean {
    const h = this.hosts.get(key)
    if (!h || !this.options.discoverStandbys || this.options.topologyIntervalMs <= 0) return false
    if (now - (this.standbysAskedAt.get(key) ?? -Infinity) < STANDBYS_EVERY_MS) return false
    this.standbysAskedAt.set(key, now)
    return true
  }

  /** Whether any server is fenced now: a login could reach it, so its identity is checked before the pool takes it. */
  anyFenced(): boolean {
    return anyFenced(this.hosts, this.servers)
  }

  /** The server a host leads to now, as far as known (judge/topology-rules.ts currentServerOf). */
  currentServer(h: HostState): string | null {
    return currentServerOf(h)
  }

  /** A recovery probe got an answer from a host marked down: a fact for the judge (which marks it up). */
  noteAnswered(key: string, at: number): void {
    if (!this.hosts.has(key)) return
    this.reachability.set(key, { reachable: true, why: null, at })
    this.version++
  }

  /** The judge found the host dead or unreachable: new connections try it last. `recheck` looks again. */
  markDown(key: string, why: string): void {
    const h = this.hosts.get(key)
    if (!h || h.down) return
    h.down = why
    this.changed(h)
  }

  /** The judge found the host answering again (its monitor, a recovery probe): up until the next verdict. */
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

  /**
   * The judge's fencing decision (judge/topology-rules.ts decideFencing), written back as facts: per
   * server, and per host for the server it leads to now.
   */
  applyFencing(primary: string | null, fencedServers: ReadonlyMap<string, string>): void {
    this.primary = primary
    for (const s of this.servers.values()) s.fenced = fencedServers.get(s.id) ?? null
    for (const h of this.hosts.values()) {
      const sid = this.currentServer(h)
      const why = sid === null ? null : (fencedServers.get(sid) ?? null)
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
    const h = this.hosts.get(key)
    if (!h) return
    if (!obs.reachable && obs.loggedIn && h.pooler === true) {
      // The pooler answered; the server behind it did not. New sessions still get in (the pooler queues
      // their queries, as it does for pg.Pool's): the pooler is not down, its server is its business.
      h.error = `the server behind the pooler did not answer: ${obs.error}`
      this.observations++
      return
    }
    const before = JSON.stringify([h.role, h.timeline, h.reachable, h.down, h.systemId, h.serverId])
    h.reachable = obs.reachable
    h.error = obs.error ?? null
    if (obs.reachable) {
      h.role = obs.role ?? h.role
      h.roleAt = obs.at
      h.timeline = obs.timeline ?? h.timeline
      h.systemId = obs.systemId ?? h.systemId
      if (obs.serverId) {
        h.serverId = obs.serverId
        h.serverIdAt = obs.at
        this.seen(h, obs.serverId)
      }
      // What the monitor's session reads is a server observation too (keyed by its identity, or by the
      // host where the server would not say who it is).
      const sid = h.serverId ?? `host:${h.key}`
      this.observeServer(sid, {
        systemId: h.systemId, role: h.role, timeline: h.timeline, reachable: true, address: null, port: null,
      }, obs.at, true)
      this.noteXmax(this.servers.get(sid)!, obs)
    } else {
      const sid = h.serverId ?? `host:${h.key}`
      const s = this.servers.get(sid)
      if (s && s.reachable !== false) {
        s.reachable = false
        this.version++
      }
    }
    // A monitor that just (re)connected made a fresh connection: it says where the address leads, too.
    if (obs.reachable && obs.fresh && obs.serverId) this.route(h, obs.serverId, obs.at)
    if (obs.ip && !h.isName) h.region = this.options.regions.regionOf(h.spec.host, obs.ip)
    this.reachability.set(key, { reachable: obs.reachable, why: obs.reachable ? null : `monitor: ${obs.error}`, at: obs.at })
    if (!obs.reachable) this.replicationReadings.set(key, { reading: null, at: obs.at })
    else if (obs.replication) this.replicationReadings.set(key, { reading: obs.replication, at: obs.at })
    if (obs.replication?.side === 'primary') {
      this.discover(h, obs.replication.senders.map((x) => x.address).filter((x): x is string => x !== null), null)
    }
    this.observations++
    this.watchPromotion(h)
    if (JSON.stringify([h.role, h.timeline, h.reachable, h.down, h.systemId, h.serverId]) !== before) this.changed(h)
  }

  /** Replay bounds of a server (ServerState.replayedBelow, newFrom), from a monitor's or a watch's reading. */
  private noteXmax(s: ServerState, obs: HostObservation): void {
    const max = (a: string | null, b: string | null | undefined): string | null => (b == null ? a : a === null || BigInt(b) > BigInt(a) ? b : a)
    if (obs.replayedXmax) s.replayedBelow = max(s.replayedBelow, obs.replayedXmax)
    else if (obs.role?.inHotStandby) s.replayedBelow = max(s.replayedBelow, obs.xmax)
    if (!obs.role || obs.role.inHotStandby || !obs.xmax) return
    if (obs.promotion && (s.newFrom === null || !s.newFromAtPromotion || BigInt(obs.xmax) <= BigInt(s.newFrom))) {
      // The watch's reading wins over a poll's that came first: it was taken in the round trip that saw the promotion.
      s.newFrom = obs.xmax
      s.newFromAtPromotion = true
    } else if (s.replayedBelow !== null && s.newFrom === null) {
      s.newFrom = obs.xmax
    }
  }

  /** Records what one source saw of a server; `live`: a source that keeps looking (monitor, watch, address check). */
  private observeServer(
    id: string,
    o: { systemId: string | null; role: ServerRole | null; timeline: number | null; reachable: boolean; address: string | null; port: number | null },
    at: number,
    live: boolean
  ): void {
    const s = this.servers.get(id)
    if (!s) {
      this.servers.set(id, { id, ...o, seenAt: at, liveAt: live ? at : null, fenced: null, replayedBelow: null, newFrom: null, newFromAtPromotion: false })
      this.version++
      return
    }
    const moved = JSON.stringify([s.role, s.timeline, s.reachable]) !== JSON.stringify([o.role ?? s.role, o.timeline ?? s.timeline, o.reachable])
    s.systemId = o.systemId ?? s.systemId
    s.role = o.role ?? s.role
    s.timeline = o.timeline ?? s.timeline
    s.reachable = o.reachable
    s.address = o.address ?? s.address
    s.port = o.port ?? s.port
    s.seenAt = Math.max(s.seenAt, at)
    if (live) s.liveAt = Math.max(s.liveAt ?? at, at)
    if (moved) this.version++
  }

  /**
   * A fresh connection to `h` (a login, an address check) reached `identity`'s server: where the address
   * leads now. A monitor pinned to another server is dropped, so that it follows the address.
   */
  private fresh(h: HostState, identity: SessionIdentity, at: number, live: boolean): void {
    const sv = identity.server
    this.observeServer(sv.id, { systemId: sv.systemId, role: sv.role, timeline: sv.timeline, reachable: true, address: sv.address, port: sv.port }, at, live)
    const before = JSON.stringify([h.leadsTo, h.pooler])
    h.pooler = identity.pooler
    this.route(h, sv.id, at)
    if (!identity.pooler && h.serverId !== null && h.serverId !== sv.id) this.monitors.get(h.key)?.drop()
    if (identity.standbys) this.discover(h, identity.standbys, sv.port)
    this.observations++
    this.version++
    if (JSON.stringify([h.leadsTo, h.pooler]) !== before) this.changed(h)
    this.forgetServers(at)
  }

  /** A fresh connection to `h` reached server `id` at `at`. */
  private route(h: HostState, id: string, at: number): void {
    this.seen(h, id)
    h.routes.push({ server: id, at })
    while (h.routes.length > ROUTES_KEPT || (h.routes.length > 0 && h.routes[0].at < at - ROUTES_MS)) h.routes.shift()
    h.leadsTo = id
    h.leadsToAt = at
  }

  private seen(h: HostState, id: string): void {
    if (h.serversSeen.includes(id)) return
    h.serversSeen.push(id)
    if (h.serversSeen.length > SERVERS_SEEN_KEPT) h.serversSeen.shift()
  }

  /** One address check of a configured host, unless a login reached it within the interval (a login is a check too). */
  private async checkAddressOf(h: HostState, everyMs: number): Promise<void> {
    const last = h.routes.at(-1)?.at ?? -Infinity
    if (Date.now() - last < everyMs * 0.8) return
    if (this.options.holdsSocketsTo && !this.options.holdsSocketsTo(h.key)) return
    const r: AddressCheckResult = await checkAddress(this.options.configFor(h.spec), this.identity, this.options.timeoutMs)
    if (this.stopped || !r.identity) return
    this.fresh(h, r.identity, r.at, true)
  }

  /**
   * Standbys of `from` (a primary) by address: each one not already a host becomes a discovered host,
   * polled slowly and watched for its promotion (the watch fences the old primary the moment it happens,
   * also where the pool reaches the primary only through a VIP). `port`: where the primary listens (its
   * standbys are assumed to listen on the same port), else the host's port.
   */
  private discover(from: HostState, addresses: string[], port: number | null): void {
    if (!this.options.discoverStandbys || this.stopped || from.discoveredFrom !== null || this.options.topologyIntervalMs <= 0) return
    for (const raw of addresses) {
      const host = normalizeAddress(raw)
      if ([...this.hosts.values()].some((x) => normalizeAddress(x.spec.host) === host || (x.addresses ?? []).includes(host))) continue
      const spec = { host, port: port ?? from.spec.port }
      const key = hostKey(spec)
      if (this.hosts.has(key)) continue
      const h = newHost(spec, false, this.options.regions.regionOf(host, host), from.key)
      this.hosts.set(key, h)
      this.monitor(h, Math.max(this.options.topologyIntervalMs, DISCOVERED_POLL_MS))
      this.changed(h)
    }
  }

  /** Servers no host leads to and nothing has seen for a long time (a restarted server's old identity). */
  private forgetServers(now: number): void {
    if (this.servers.size < 8) return
    const named = new Set([...this.hosts.values()].flatMap((h) => [h.leadsTo, h.serverId, ...h.routes.map((r) => r.server)]))
    for (const s of this.servers.values()) if (!named.has(s.id) && now - s.seenAt > SERVER_FORGET_MS) this.servers.delete(s.id)
  }

  /**
   * A reachable standby gets a promotion watch (promotion-watch.ts): its promotion is observed the moment
   * it happens, so fencing the old primary does not wait for the next poll. Anything else ends the watch.
   */
  private watchPromotion(h: HostState): void {
    const m = this.monitors.get(h.key)
    if (!m || this.stopped) return
    // Through a pooler the wait would hold one of its server connections for good.
    if (h.reachable && h.role?.inHotStandby && h.pooler !== true) {
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
