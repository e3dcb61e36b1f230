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
