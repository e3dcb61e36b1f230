/**
 * The topology rules of the judge, pure: who is primary and who is fenced (split-brain), and the verdicts
 * that follow for pooled sockets from what the topology knows of their hosts.
 *
 * - fenced: two hosts accept writes (split-brain). The higher timeline is the primary; the other is fenced
 *   until it reports itself a standby: its sockets are evicted and new connections to it refused.
 * - stale-dns: the socket's IP is no longer behind its configured name (the RDS/Aurora failover case).
 * - wrong-role: the server no longer satisfies targetSessionAttrs (a standby promoted under a read-only
 *   pool, an old primary back as a standby).
 * - dual-region: under a single-region writer policy, a socket outside the primary's region.
 */
import { normalizeAddress } from '../kernel/proc-net-tcp'
import { describeRole, satisfies, type ServerRole, type TargetSessionAttrs } from '../topology/hosts'
import { anyFenced, currentServerOf, type HostState, type Route, type ServerState } from '../topology/topology'
import type { TopologyVerdictKind, Verdict } from './verdicts'

export interface TopologySocket {
  id: number
  hostKey: string
  ip: string | null
  /** The role this very session reported (ParameterStatus), and when. */
  role: ServerRole | null
  roleAt: number | null
  region: string | null
  /**
   * The server this session reached, read at login (identity.ts), and when; null where it was not read (a
   * client adopted already connected, a server that would not say): the host's state speaks for it then.
   */
  serverId?: string | null
  loginAt?: number | null
  /** Through a pooler: the session's server changes per transaction, so no verdict rests on one server. */
  pooler?: boolean
  /** Its identity has been asked for already (once per session). */
  identityAsked?: boolean
}

/** A topology verdict: the judge dates it (firstEvidenceAt) at the tick that found it. */
export type TopologyVerdict = Omit<Verdict<TopologyVerdictKind>, 'firstEvidenceAt'>

/**
 * Who is primary, who is fenced — per server, by identity. Writable = reachable, not in recovery, not
 * default read-only, and identified (role and timeline read together by a monitor, a promotion watch, an
 * address check or a login: a session's role report alone takes no part). Among the writable servers of one
 * cluster (same system identifier, or unknown) the highest timeline wins and every writable server on a
 * lower timeline is fenced. Writable servers of different clusters (a multi-primary setup) are never fenced
 * against each other.
 *
 * Equal timelines: a promotion always starts a new timeline, so two writable servers on one timeline are
 * either one server seen before and after a restart (its start time, so its identity, changed) or an odd
 * setup. They are judged only when a source that keeps looking (a monitor, a watch, an address check) sees
 * both now (`live`): then the previous primary keeps the title and the other is fenced, as before.
 *
 * Fencing is sticky per server: lifted only when the server is seen as a standby (also while unreachable it
 * stays). Configured hosts with the same server identity (`serverId`: one server under two names, a VIP or
 * proxy and its direct address) are one server: never fenced against each other, and of one fate. Servers
 * known only from fresh connections (`servers`: logins and address checks behind a VIP, discovered standbys)
 * take part like the monitored ones: behind a VIP the old primary is known from its sessions' logins, the
 * promoted standby from its promotion watch.
 */
export function decideFencing(
  hosts: HostState[],
  previousPrimary: string | null,
  servers: ReadonlyMap<string, ServerState> = new Map(),
  now = 0,
  liveMs = LIVE_MS
): { primary: string | null; fenced: Map<string, string>; fencedServers: Map<string, string> } {
  const views = serverViews(hosts, servers, now, liveMs)
  const fencedServers = new Map<string, string>()
  for (const v of views) if (v.fenced && !v.standby) fencedServers.set(v.id, v.fenced)

  const allWritable = views.filter((v) => v.writable)
  const ids = new Set(allWritable.map((v) => v.systemId).filter((x) => x !== null))
  // Only one cluster is judged: the one the first writable server belongs to (unknown ids join it).
  const cluster = allWritable[0]?.systemId ?? [...ids][0] ?? null
  const writable = ids.size > 1 ? allWritable.filter((v) => v.systemId === null || v.systemId === cluster) : allWritable
  const tl = (v: ServerView): number => v.timeline ?? -1
  const previousServer = previousPrimary === null ? null : currentServerOf(hosts.find((h) => h.key === previousPrimary))
  if (writable.length >= 2) {
    const top = Math.max(...writable.map(tl))
    const tied = writable.filter((v) => tl(v) === top)
    const liveTied = tied.filter((v) => v.live)
    const winner = liveTied.find((v) => v.id === previousServer) ?? liveTied[0] ?? tied.find((v) => v.id === previousServer) ?? tied[0]
    for (const v of writable) {
      if (v === winner || fencedServers.has(v.id)) continue
      // Strictly lower: fenced. Equal: only when both are seen now (else most likely one server before and after a restart).
      if (tl(v) === top && !(v.live && winner.live)) continue
      fencedServers.set(v.id, `split-brain: ${nameOf(winner)} also accepts writes, on timeline ${timelineText(top)} (this host: timeline ${timelineText(tl(v))})`)
    }
  }

  const fenced = new Map<string, string>()
  for (const h of hosts) {
    const sid = currentServerOf(h)
    const why = sid === null ? undefined : fencedServers.get(sid)
    if (why) fenced.set(h.key, why)
  }
  const candidates = writable.filter((v) => !fencedServers.has(v.id))
  if (candidates.length === 0) return { primary: null, fenced, fencedServers }
  const top = Math.max(...candidates.map(tl))
  const best = candidates.find((v) => tl(v) === top && v.id === previousServer) ?? candidates.find((v) => tl(v) === top)!
  // The primary is a name of that server: the previous one while it still leads there writable, else the first.
  const prev = previousPrimary === null ? undefined : hosts.find((h) => h.key === previousPrimary)
  const prevStill = prev !== undefined && currentServerOf(prev) === best.id && (prev.reachable !== false || best.writableNames.length === 0)
  const primary = prevStill ? prev.key : (best.writableNames[0] ?? best.names[0] ?? null)
  return { primary, fenced, fencedServers }
}

/** How long a server counts as seen now after a repeating source (monitor, watch, address check) last saw it. */
export const LIVE_MS = 5_000

/** One server as the fencing rule sees it, merged from its names' monitors and the server observations. */
export interface ServerView {
  id: string
  systemId: string | null
  writable: boolean
  /** Seen as a standby now (lifts a fencing). */
  standby: boolean
  timeline: number | null
  live: boolean
  fenced: string | null
  /** Host keys that lead to it, in list order (configured before discovered). */
  names: string[]
  /** Of those, the ones whose monitor reaches it writable now (the primary's name is one of them when any). */
  writableNames: string[]
  /** Where the server says sessions arrive, for servers no host names. */
  address: string | null
}

export function serverViews(hosts: HostState[], servers: ReadonlyMap<string, ServerState>, now: number, liveMs = LIVE_MS): ServerView[] {
  const out = new Map<string, ServerView>()
  const view = (id: string): ServerView => {
    let v = out.get(id)
    if (!v) {
      v = { id, systemId: null, writable: false, standby: false, timeline: null, live: false, fenced: null, names: [], writableNames: [], address: null }
      out.set(id, v)
    }
    return v
  }
  const writableRole = (r: ServerRole | null): boolean => Boolean(r && !r.inHotStandby && !r.readOnly)
  for (const h of hosts) {
    // What the host's own monitor reads (today's view of a configured host); a host with no identity is its own server.
    const id = h.serverId ?? `host:${h.key}`
    const v = view(id)
    if (!v.names.includes(h.key)) v.names.push(h.key)
    v.systemId ??= h.systemId
    const identified = h.serverId !== null || h.timeline !== null
    if (h.reachable && identified && writableRole(h.role)) {
      v.writable = true
      v.writableNames.push(h.key)
    }
    if (h.reachable && h.role?.inHotStandby) v.standby = true
    if (h.timeline !== null) v.timeline = Math.max(v.timeline ?? -1, h.timeline)
    if (h.reachable && identified) v.live = true
    const current = currentServerOf(h)!
    if (h.fenced && !v.fenced && current === id) v.fenced = h.fenced
    // Where a fresh connection to it leads now (behind a VIP: another server than the monitor's).
    if (current !== id) {
      const w = view(current)
      if (!w.names.includes(h.key)) w.names.push(h.key)
    }
  }
  for (const s of servers.values()) {
    const v = view(s.id)
    v.systemId ??= s.systemId
    v.address ??= s.address !== null && s.port !== null ? `${s.address}:${s.port}` : s.address
    if (s.reachable && writableRole(s.role)) v.writable = true
    if (s.reachable && s.role?.inHotStandby) v.standby = true
    if (s.timeline !== null) v.timeline = Math.max(v.timeline ?? -1, s.timeline)
    if (s.liveAt !== null && now - s.liveAt <= liveMs && s.reachable) v.live = true
    if (s.fenced && !v.fenced) v.fenced = s.fenced
  }
  // List order: servers named by configured hosts first (in host order), then the others as first seen.
  const order = (v: ServerView): number => {
    const i = hosts.findIndex((h) => v.names.includes(h.key))
    return i < 0 ? hosts.length : i
  }
  return [...out.values()].map((v, i) => ({ v, i })).sort((a, b) => order(a.v) - order(b.v) || a.i - b.i).map(({ v }) => v)
}

function nameOf(v: ServerView): string {
  return v.names[0] ?? v.address ?? v.id
}

function timelineText(tl: number): string {
  return tl < 0 ? '?' : String(tl)
}

export function topologyVerdicts(
  hosts: Map<string, HostState>,
  sockets: TopologySocket[],
  attrs: TargetSessionAttrs,
  primary: string | null,
  singleRegion: boolean,
  servers: ReadonlyMap<string, ServerState> = new Map()
): TopologyVerdict[] {
  const out: TopologyVerdict[] = []
  const primaryRegion = primary ? hosts.get(primary)?.region ?? null : null
  for (const s of sockets) {
    const h = hosts.get(s.hostKey)
    if (!h) continue
    const server = s.serverId ? servers.get(s.serverId) : undefined
    // Through a pooler the host is the pooler: where its sessions run is the pooler's business (README).
    const own = !s.pooler
    const fenced = own ? (server ? server.fenced : h.fenced) : null
    if (fenced) {
      const evidence = server && server.id !== currentServerOf(h) ? `the server behind ${h.key} this session reached (${describeServer(server)}) is fenced: ${fenced}` : `${h.key} is fenced: ${fenced}`
      out.push({ id: s.id, kind: 'fenced', evidence })
      continue
    }
    if (h.isName && h.addresses && h.addresses.length > 0 && s.ip && !h.addresses.includes(normalizeAddress(s.ip))) {
      out.push({ id: s.id, kind: 'stale-dns', evidence: `${h.spec.host} now resolves to ${h.addresses.join(', ')}; this socket goes to ${normalizeAddress(s.ip)}` })
      continue
    }
    // The newer of the session's own report and its server's (or, where the server is unknown, the host's monitor's).
    const other = server ? { role: server.role, at: server.seenAt } : { role: h.role, at: h.roleAt }
    const role = own ? ((s.roleAt ?? -1) >= (other.at ?? -1) ? s.role : other.role) : null
    if (role && !satisfies(attrs, role)) {
      out.push({ id: s.id, kind: 'wrong-role', evidence: `${h.key} is now ${describeRole(role)}, target_session_attrs=${attrs}` })
      continue
    }
    const moved = own && server && s.loginAt != null ? movedTo(h.routes, server.id, s.loginAt) : null
    const target = moved === null ? undefined : servers.get(moved)
    if (target && !target.fenced && (!target.role || satisfies(attrs, target.role))) {
      out.push({ id: s.id, kind: 'rerouted', evidence: `${h.key} now leads to another server (${describeServer(target)}); this session is on ${describeServer(server!)}` })
      continue
    }
    if (singleRegion && primaryRegion && s.region && s.region !== primaryRegion) {
      out.push({ id: s.id, kind: 'dual-region', evidence: `socket in region ${s.region}, the primary ${primary} is in ${primaryRegion}` })
    }
  }
  return out
}

/** Fresh connections since a session's login that must agree before its address counts as moved. */
export const ROUTE_CONFIRMATIONS = 2

/**
 * The server an address moved to, away from `serverId`, or null. Moved: the last ROUTE_CONFIRMATIONS fresh
 * connections made after `since` (a session's login) all reached one other server and none reached
 * `serverId`. An address whose recent routes went back and forth (A, B, A) balances over several servers
 * (a load balancer in front of replicas): it has not moved, and nothing is rerouted.
 */
export function movedTo(routes: readonly Route[], serverId: string, since: number): string | null {
  const after = routes.filter((r) => r.at > since)
  if (after.length < ROUTE_CONFIRMATIONS || after.some((r) => r.server === serverId)) return null
  const last = after.slice(-ROUTE_CONFIRMATIONS)
  if (last.some((r) => r.server !== last[0].server)) return null
  return balances(routes) ? null : last[0].server
}

/** Whether a sequence of routes returns to a server it had left (A, B, A): a balanced address. */
export function balances(routes: readonly Route[]): boolean {
  const runs: string[] = []
  for (const r of routes) if (runs[runs.length - 1] !== r.server) runs.push(r.server)
  return new Set(runs).size < runs.length
}

function describeServer(s: ServerState): string {
  const where = s.address !== null ? `${s.address}${s.port !== null ? `:${s.port}` : ''}` : s.id
  const role = s.role ? (s.role.inHotStandby ? 'standby' : 'primary') : 'role unknown'
  return `${where}, ${role}${s.timeline !== null ? `, timeline ${s.timeline}` : ''}`
}

/**
 * Sessions whose server must be read now: not known yet, never asked, not through a pooler, on a host whose
 * address has been seen leading to more than one server (a VIP switched, a balancer) or while any server is
 * fenced — there the host's own state cannot speak for the session (it says where the address leads now).
 * Elsewhere a session its owner holds is never asked, and its last statement stays the owner's own.
 */
export function identitiesWanted(hosts: ReadonlyMap<string, HostState>, sockets: readonly TopologySocket[], servers: ReadonlyMap<string, ServerState>): number[] {
  const fenced = anyFenced(hosts, servers)
  const unknown = sockets.filter((s) => !s.serverId && !s.identityAsked && !s.pooler)
  return unknown.filter((s) => fenced || (hosts.get(s.hostKey)?.serversSeen.length ?? 0) > 1).map((s) => s.id)
}
