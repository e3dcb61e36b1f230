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
import type { HostState } from '../topology/topology'
import type { TopologyVerdictKind } from './verdicts'

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
 * more writable servers of one cluster (same system identifier, or unknown) the highest timeline wins (ties:
 * the previous primary, else list order). Writable hosts of different clusters (a multi-primary setup) are
 * never fenced against each other. A fenced host stays fenced until it reports being a standby, also while
 * unreachable.
 *
 * Configured hosts with the same server identity (`serverId`: one server under two names, a VIP or proxy
 * and its direct address) are judged as one server: never fenced against each other, and of one fate — a
 * server is writable when any of its names reaches it writable, and fenced under every name when fenced
 * under one. A writable host that its monitor has not read yet (no timeline, no identity) waits for it.
 */
export function decideFencing(hosts: HostState[], previousPrimary: string | null): { primary: string | null; fenced: Map<string, string> } {
  const serverOf = (h: HostState): string => (h.serverId !== null ? `id:${h.serverId}` : `host:${h.key}`)
  const servers = new Map<string, HostState[]>()
  for (const h of hosts) servers.set(serverOf(h), [...(servers.get(serverOf(h)) ?? []), h])

  // Sticky fencing, per server: lifted only when a reachable name reports a standby.
  const fencedServers = new Map<string, string>()
  for (const [id, names] of servers) {
    const why = names.find((h) => h.fenced)?.fenced
    if (why && !names.some((h) => h.role?.inHotStandby && h.reachable)) fencedServers.set(id, why)
  }

  const isWritable = (h: HostState): boolean => Boolean(h.reachable && h.role && !h.role.inHotStandby && !h.role.readOnly)
  // A host known writable only from a session's role report (no timeline, no identity: its monitor has not
  // read it yet) takes no part: it may be another name of a server already judged. Its monitor decides.
  const allWritable = hosts.filter((h) => isWritable(h) && (h.serverId !== null || h.timeline !== null))
  const ids = new Set(allWritable.map((h) => h.systemId).filter((x) => x !== null))
  // Only one cluster is judged: the one the first writable host belongs to (unknown ids join it).
  const cluster = allWritable[0]?.systemId ?? [...ids][0] ?? null
  const writableHosts = ids.size > 1 ? allWritable.filter((h) => h.systemId === null || h.systemId === cluster) : allWritable
  // One entry per writable server (its first writable name in list order), with its best-known timeline.
  const writable: { id: string; rep: HostState; timeline: number }[] = []
  for (const h of writableHosts) {
    const id = serverOf(h)
    const seen = writable.find((w) => w.id === id)
    if (seen) seen.timeline = Math.max(seen.timeline, h.timeline ?? -1)
    else writable.push({ id, rep: h, timeline: h.timeline ?? -1 })
  }
  const previous = previousPrimary === null ? null : hosts.find((h) => h.key === previousPrimary) ?? null
  const previousServer = previous ? serverOf(previous) : null
  if (writable.length >= 2) {
    const winner = writable.reduce((best, w) => {
      if (w.timeline !== best.timeline) return w.timeline > best.timeline ? w : best
      return best.id === previousServer ? best : w.id === previousServer ? w : best
    })
    for (const w of writable) {
      if (w === winner || fencedServers.has(w.id)) continue
      fencedServers.set(w.id, `split-brain: ${winner.rep.key} also accepts writes, on timeline ${timelineText(winner.timeline)} (this host: timeline ${timelineText(w.timeline)})`)
    }
  }

  const fenced = new Map<string, string>()
  for (const h of hosts) {
    const why = fencedServers.get(serverOf(h))
    if (why) fenced.set(h.key, why)
  }
  const candidates = writable.filter((w) => !fencedServers.has(w.id))
  if (candidates.length === 0) return { primary: null, fenced }
  const best = candidates.reduce((a, b) => (b.timeline > a.timeline ? b : a))
  // The primary is a name of that server: the previous one while it still reaches it writable, else the first.
  const primary = previous && best.id === previousServer && isWritable(previous) ? previous.key : best.rep.key
  return { primary, fenced }
}

function timelineText(tl: number): string {
  return tl < 0 ? '?' : String(tl)
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
