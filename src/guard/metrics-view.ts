/** What the pool's observable instruments read at collection time: counts from pg-pool, the rest from the registry. */
import type { Pool as PgPool } from 'pg'
import { tcpStateName } from '../kernel/tcp-info'
import { clientsOf, poolOptionsOf } from '../pg/internals'
import type { PoolView } from '../telemetry/metrics'
import { endpointOf } from './evictor'
import type { ConnRecord } from './registry'
import type { Scheduler } from './scheduler'
import type { Topology } from '../topology/topology'

export function poolView(pool: PgPool, records: readonly ConnRecord[], scheduler: Pick<Scheduler, 'foreign' | 'health' | 'isDegraded'>, topology: Pick<Topology, 'hosts'>, minIdle: number): PoolView {
  const po = poolOptionsOf(pool)
  const members = new Set(clientsOf(pool))
  const live = records.filter((r) => members.has(r.client) && r.state !== 'connecting')
  const idle = pool.idleCount
  const regions = new Set(live.map((r) => r.region).filter((x) => x !== null))
  // By server identity where the session read it: behind a VIP the old and the new primary share one endpoint.
  const writable = new Set(live.filter(writes).map((r) => r.server?.id ?? endpointOf(r)))
  return {
    idle,
    used: Math.max(0, live.length - idle),
    max: po.max ?? null,
    idleMax: po.max ?? null,
    idleMin: po.max === undefined ? null : Math.max(po.min ?? 0, minIdle),
    pending: pool.waitingCount,
    sockets: live.map((r) => ({
      tcpState: r.kernel ? tcpStateName(r.kernel.state) : 'unknown',
      address: r.remoteAddress ?? r.configuredHost,
      port: r.remotePort ?? r.configuredPort,
      region: r.region,
      role: r.reportedRole ? (r.reportedRole.inHotStandby ? 'standby' : 'primary') : null,
    })),
    foreignSockets: scheduler.foreign.length,
    regions: regions.size,
    writableHosts: writable.size,
    health: scheduler.health.map((h) => {
      const i = h.endpoint.lastIndexOf(':')
      return { address: h.endpoint.slice(0, i), port: Number(h.endpoint.slice(i + 1)), state: h.state, rttSeconds: h.metrics.rttSeconds, retransmitRatio: h.metrics.retransmitRatio, queuedBytes: h.metrics.queuedBytes }
    }),
    // Monitored hosts whose link was judged at least once (a host never read has no series to show).
    replication: [...topology.hosts.values()]
      .filter((h) => h.replication.since !== null || h.replication.pendingSince !== null || h.replication.detail !== null)
      .map((h) => ({ address: h.spec.host, port: h.spec.port, state: h.replication.state, lagSeconds: h.replication.lagSeconds })),
    ...fleetView(live, scheduler, topology),
  }
}

/**
 * The fleet view's per-host facts (issue 21), read at collection time from what the guard already keeps:
 * the host's down mark (kernel or probe verdict, or its monitor cannot reach it), the connect planner's
 * degraded fact, and the timeline of each host the pool writes through. Nothing is computed per query.
 */
function fleetView(live: readonly ConnRecord[], scheduler: Pick<Scheduler, 'isDegraded'>, topology: Pick<Topology, 'hosts'>): Pick<PoolView, 'hostStatus' | 'writableTimelines'> {
  const hostStatus: NonNullable<PoolView['hostStatus']> = []
  for (const h of topology.hosts.values()) {
    // A host never reached (reachable null) has nothing to report: a fleet rule would count it as healthy.
    const status = h.down !== null ? 'down' : scheduler.isDegraded(h.key) ? 'degraded' : h.reachable === true ? 'up' : null
    if (status !== null) hostStatus.push({ address: h.spec.host, port: h.spec.port, status })
  }
  // Every host whose timeline a monitor read (none without monitors: nothing to compare), 0 where the pool
  // writes through none of it: the SDK keeps exporting an attribute set it saw once, so a host the pool
  // stopped writing through must say so, not keep its last timeline.
  const writing = new Set<string>()
  for (const r of live) if (writes(r)) writing.add(r.hostKey)
  const writableTimelines: NonNullable<PoolView['writableTimelines']> = []
  for (const h of topology.hosts.values()) {
    if (h.timeline !== null) writableTimelines.push({ address: h.spec.host, port: h.spec.port, timeline: writing.has(h.key) ? h.timeline : 0 })
  }
  return { hostStatus, writableTimelines }
}

/** The session reported a primary that takes writes (in_hot_standby off, default_transaction_read_only off). */
function writes(r: ConnRecord): boolean {
  return r.reportedRole !== null && !r.reportedRole.inHotStandby && !r.reportedRole.readOnly
}
