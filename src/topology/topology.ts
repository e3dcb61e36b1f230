/**
 * What the pool knows of its hosts — roles, timelines, reachability, DNS, regions, fencing — and the
 * verdicts that follow for its sockets. `decideFencing` and `topologyVerdicts` are pure; the Topology class
 * feeds them from the host monitors, the DNS loop and the pool's own connections.
 *
 * - fenced: two hosts accept writes (split-brain). The higher timeline is the primary; the other is fenced
 *   until it reports itself a standby: its sockets are evicted and new connections to it refused.
 * - stale-dns: the socket's IP is no longer behind its configured name (the RDS/Aurora failover case).
 * - wrong-role: the server no longer satisfies targetSessionAttrs (a standby promoted under a read-only
 *   pool, an old primary back as a standby).
 * - dual-region: under a single-region writer policy, a socket outside the primary's region.
 */
import { EventEmitter } from 'node:events'
import { isIP } from 'node:net'
import { lookup as dnsLookup } from 'node:dns/promises'
import { normalizeAddress } from '../kernel/proc-net-tcp'
import { HostMonitor, type HostObservation } from './host-monitor'
import {
  type Attempt,
  describeRole,
  type HostSpec,
  hostKey,
  type LoadBalanceHosts,
  planAttempts,
  satisfies,
  type ServerRole,
  type TargetSessionAttrs,
} from './hosts'
import type { Regions } from './regions'

export type TopologyVerdictKind = 'fenced' | 'stale-dns' | 'wrong-role' | 'dual-region'

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
  reachable: boolean | null
  error: string | null
  /** Why the host is considered down (monitor unreachable, kernel verdict), or null. */
  down: string | null
  /** Why the host is fenced (split-brain loser), or null. */
  fenced: string | null
  /** Current DNS answer for a name; null until resolved (or for IPs). */
  addresses: string[] | null
  region: string | null
}

export interface TopologySocket {
  id: number
  hostKey: string
  ip: string | null
  /** The role this very session reported (ParameterStatus), and when. */
  role: ServerRole | null
  roleAt: number | null
  region: string | null
}

export interface TopologyVerdict {
  id: number
  kind: TopologyVerdictKind
  evidence: string
}

/**
 * Who is primary, who is fenced. Writable = reachable, not in recovery, not default read-only. With two or
 * more writable hosts of one cluster (same system identifier, or unknown) the highest timeline wins (ties:
 * the previous primary, else list order). Writable hosts of different clusters (a multi-primary setup) are
 * never fenced against each other. A fenced host stays fenced until it reports being a standby, also while
 * unreachable.
 */
export function decideFencing(hosts: HostState[], previousPrimary: string | null): { primary: string | null; fenced: Map<string, string> } {
  const fenced = new Map<string, string>()
  for (const h of hosts) if (h.fenced && !(h.role?.inHotStandby && h.reachable)) fenced.set(h.key, h.fenced)
  const allWritable = hosts.filter((h) => h.reachable && h.role && !h.role.inHotStandby && !h.role.readOnly)
  const ids = new Set(allWritable.map((h) => h.systemId).filter((x) => x !== null))
  // Only one cluster is judged: the one the first writable host belongs to (unknown ids join it).
  const cluster = allWritable[0]?.systemId ?? [...ids][0] ?? null
  const writable = ids.size > 1 ? allWritable.filter((h) => h.systemId === null || h.systemId === cluster) : allWritable
  if (writable.length >= 2) {
    const tl = (h: HostState): number => h.timeline ?? -1
    const winner = writable.reduce((best, h) => {
      if (tl(h) !== tl(best)) return tl(h) > tl(best) ? h : best
      return best.key === previousPrimary ? best : h.key === previousPrimary ? h : best
    })
    for (const h of writable) {
      if (h === winner || fenced.has(h.key)) continue
      fenced.set(h.key, `split-brain: ${winner.key} also accepts writes, on timeline ${winner.timeline ?? '?'} (this host: timeline ${h.timeline ?? '?'})`)
    }
  }
  const candidates = writable.filter((h) => !fenced.has(h.key))
  const primary = candidates.length === 0 ? null : candidates.reduce((a, b) => ((b.timeline ?? -1) > (a.timeline ?? -1) ? b : a)).key
  return { primary, fenced }
}

export function topologyVerdicts(
  hosts: Map<string, HostState>,
  sockets: TopologySocket[],
  attrs: TargetSessionAttrs,
  primary: string | null,
  singleRegion: boolean
): TopologyVerdict[] {
  const out: TopologyVerdict[] = []
  const primaryRegion = primary ? hosts.get(primary)?.region ?? null : null
  for (const s of sockets) {
    const h = hosts.get(s.hostKey)
    if (!h) continue
    if (h.fenced) {
      out.push({ id: s.id, kind: 'fenced', evidence: `${h.key} is fenced: ${h.fenced}` })
      continue
    }
    if (h.isName && h.addresses && h.addresses.length > 0 && s.ip && !h.addresses.includes(normalizeAddress(s.ip))) {
      out.push({ id: s.id, kind: 'stale-dns', evidence: `${h.spec.host} now resolves to ${h.addresses.join(', ')}; this socket goes to ${normalizeAddress(s.ip)}` })
      continue
    }
    // The newer of the session's own report and the monitor's.
    const role = (s.roleAt ?? -1) >= (h.roleAt ?? -1) ? s.role : h.role
    if (role && !satisfies(attrs, role)) {
      out.push({ id: s.id, kind: 'wrong-role', evidence: `${h.key} is now ${describeRole(role)}, target_session_attrs=${attrs}` })
      continue
    }
    if (singleRegion && primaryRegion && s.region && s.region !== primaryRegion) {
      out.push({ id: s.id, kind: 'dual-region', evidence: `socket in region ${s.region}, the primary ${primary} is in ${primaryRegion}` })
    }
  }
  return out
}

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
  private readonly monitors: HostMonitor[] = []
  private readonly timers = new Set<NodeJS.Timeout>()
  private stopped = false

  constructor(readonly options: TopologyOptions) {
    super()
    for (const spec of options.hosts) {
      const isName = !spec.host.startsWith('/') && isIP(spec.host) === 0
      this.hosts.set(hostKey(spec), {
        key: hostKey(spec), spec, isName, role: null, roleAt: null, timeline: null, systemId: null, reachable: null, error: null,
        down: null, fenced: null, addresses: null, region: options.regions.regionOf(spec.host, null),
      })
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
        this.monitors.push(m)
        this.loop(() => this.pollOne(m), this.options.topologyIntervalMs, 0)
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
    for (const m of this.monitors) m.close()
  }

  /** `singleRegion`: hosts outside the primary's region go last. */
  plan(singleRegion = false, random?: () => number): Attempt[] {
    const home = this.primary ? this.hosts.get(this.primary)?.region ?? null : null
    return planAttempts(this.options.hosts, this.options.targetSessionAttrs, this.options.loadBalanceHosts, (spec) => {
      const h = this.hosts.get(hostKey(spec))
      const elsewhere = singleRegion && home !== null && h?.region != null && h.region !== home
      return { role: h?.role ?? undefined, down: Boolean(h?.down), fenced: Boolean(h?.fenced), elsewhere }
    }, random)
  }

  state(host: string, port: number): HostState | undefined {
    return this.hosts.get(`${host}:${port}`)
  }

  /** A pooled session reported its role (ParameterStatus): it also tells us about its host. */
  noteRole(host: string, port: number, role: ServerRole): void {
    const h = this.state(host, port)
    if (!h) return
    const changed = !h.role || h.role.inHotStandby !== role.inHotStandby || h.role.readOnly !== role.readOnly
    h.role = role
    h.roleAt = Date.now()
    h.reachable = true
    if (changed) this.changed(h)
  }

  /** The kernel judged the host dead: order it last, look again (DNS, monitor) at once. */
  markDown(host: string, port: number, why: string): void {
    const h = this.state(host, port)
    if (!h || h.down) return
    h.down = why
    this.changed(h)
    if (h.isName) void this.resolve(h)
    const m = this.monitors.find((x) => hostKey(x.spec) === h.key)
    if (m) void this.pollOne(m)
  }

  verdicts(sockets: TopologySocket[], singleRegion: boolean): TopologyVerdict[] {
    return topologyVerdicts(this.hosts, sockets, this.options.targetSessionAttrs, this.primary, singleRegion)
  }

  private async pollOne(m: HostMonitor): Promise<void> {
    const obs = await m.poll()
    if (this.stopped) return
    this.observe(hostKey(m.spec), obs)
  }

  private observe(key: string, obs: HostObservation): void {
    const h = this.hosts.get(key)!
    const before = JSON.stringify([h.role, h.timeline, h.reachable, h.down])
    h.reachable = obs.reachable
    h.error = obs.error ?? null
    if (obs.reachable) {
      h.role = obs.role ?? h.role
      h.roleAt = obs.at
      h.timeline = obs.timeline ?? h.timeline
      h.systemId = obs.systemId ?? h.systemId
      h.down = null
    } else if (!h.down) {
      h.down = `monitor: ${obs.error}`
    }
    if (obs.ip && !h.isName) h.region = this.options.regions.regionOf(h.spec.host, obs.ip)
    this.refence()
    if (JSON.stringify([h.role, h.timeline, h.reachable, h.down]) !== before) this.changed(h)
  }

  private refence(): void {
    const { primary, fenced } = decideFencing([...this.hosts.values()], this.primary)
    this.primary = primary
    for (const h of this.hosts.values()) {
      const why = fenced.get(h.key) ?? null
      if (why !== h.fenced) {
        h.fenced = why
        this.changed(h)
      }
    }
  }

  private async resolve(h: HostState): Promise<void> {
    let addresses: string[]
    try {
      addresses = (await this.options.lookup(h.spec.host)).map(normalizeAddress).sort()
    } catch (err) {
      h.error = `DNS: ${(err as Error).message}` // keep the last good answer: a resolver hiccup is no failover
      return
    }
    if (this.stopped || JSON.stringify(addresses) === JSON.stringify(h.addresses)) return
    const moved = h.addresses !== null
    h.addresses = addresses
    h.region = this.options.regions.regionOf(h.spec.host, addresses[0] ?? null)
    if (moved) {
      // The name points elsewhere: the monitor must follow it.
      this.monitors.find((x) => hostKey(x.spec) === h.key)?.drop()
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
    this.emit('change', { ...h })
  }
}
