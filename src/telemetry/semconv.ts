/**
 * Every metric name, unit and description this library emits, in one place.
 *
 * The db.client.connection.* instruments follow the OpenTelemetry semantic conventions for database client
 * metrics (docs/database/database-metrics.md, "Connection pools"): names, instrument kinds, units and the
 * required attributes db.client.connection.pool.name and db.client.connection.state. The guard's own
 * instruments live under the `pg_pool_guard.` prefix.
 */

export const ATTR_POOL_NAME = 'db.client.connection.pool.name'
export const ATTR_STATE = 'db.client.connection.state'
export const STATE_IDLE = 'idle'
export const STATE_USED = 'used'

/** Guard attributes. */
export const ATTR_REASON = 'pg_pool_guard.reason'
export const ATTR_VERDICT = 'pg_pool_guard.verdict'
export const ATTR_IN_USE = 'pg_pool_guard.in_use'
export const ATTR_TCP_STATE = 'pg_pool_guard.tcp.state'
export const ATTR_REGION = 'pg_pool_guard.region'
export const ATTR_ROLE = 'pg_pool_guard.role'
export const ATTR_PROBE_OUTCOME = 'pg_pool_guard.probe.outcome'
export const ATTR_OUTCOME = 'pg_pool_guard.outcome'
export const ATTR_RESOLUTION = 'pg_pool_guard.resolution'
/** The endpoint a socket goes to (ip:port), semantic-convention server.address/server.port in one. */
export const ATTR_SERVER_ADDRESS = 'server.address'
export const ATTR_SERVER_PORT = 'server.port'

export type InstrumentKind = 'counter' | 'updowncounter' | 'histogram' | 'observable-updowncounter' | 'observable-gauge'

export interface InstrumentSpec {
  name: string
  kind: InstrumentKind
  unit: string
  description: string
  /** Histogram bucket advice. */
  buckets?: number[]
}

const SECONDS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10]

/** Semantic-convention connection pool metrics. */
export const SEMCONV = {
  connectionCount: {
    name: 'db.client.connection.count', kind: 'observable-updowncounter', unit: '{connection}',
    description: 'The number of connections that are currently in state described by the state attribute',
  },
  idleMax: {
    name: 'db.client.connection.idle.max', kind: 'observable-updowncounter', unit: '{connection}',
    description: 'The maximum number of idle open connections allowed',
  },
  idleMin: {
    name: 'db.client.connection.idle.min', kind: 'observable-updowncounter', unit: '{connection}',
    description: 'The minimum number of idle open connections allowed',
  },
  max: {
    name: 'db.client.connection.max', kind: 'observable-updowncounter', unit: '{connection}',
    description: 'The maximum number of open connections allowed',
  },
  pendingRequests: {
    name: 'db.client.connection.pending_requests', kind: 'observable-updowncounter', unit: '{request}',
    description: 'The number of current pending requests for an open connection',
  },
  timeouts: {
    name: 'db.client.connection.timeouts', kind: 'counter', unit: '{timeout}',
    description: 'The number of connection timeouts that have occurred trying to obtain a connection from the pool',
  },
  createTime: {
    name: 'db.client.connection.create_time', kind: 'histogram', unit: 's', buckets: SECONDS,
    description: 'The time it took to create a new connection',
  },
  waitTime: {
    name: 'db.client.connection.wait_time', kind: 'histogram', unit: 's', buckets: SECONDS,
    description: 'The time it took to obtain an open connection from the pool',
  },
  useTime: {
    name: 'db.client.connection.use_time', kind: 'histogram', unit: 's', buckets: SECONDS,
    description: 'The time between borrowing a connection and returning it to the pool',
  },
} as const satisfies Record<string, InstrumentSpec>

export const GUARD_PREFIX = 'pg_pool_guard.'

/** The guard's own metrics. */
export const GUARD = {
  evictions: {
    name: 'pg_pool_guard.evictions', kind: 'counter', unit: '{connection}',
    description: 'Connections the guard evicted, by reason (zombie-unacked, host-dead, fenced, stale-dns, ...) and whether they were in use',
  },
  verdicts: {
    name: 'pg_pool_guard.verdicts', kind: 'counter', unit: '{verdict}',
    description: 'Verdicts the guard reached on pooled connections, by kind',
  },
  sockets: {
    name: 'pg_pool_guard.sockets', kind: 'observable-gauge', unit: '{socket}',
    description: 'Pooled sockets by kernel TCP state, server endpoint, region and server role',
  },
  retransmits: {
    name: 'pg_pool_guard.retransmits', kind: 'counter', unit: '{segment}',
    description: 'TCP retransmissions observed on pooled sockets (TCP_INFO total_retrans deltas)',
  },
  keepaliveProbes: {
    name: 'pg_pool_guard.keepalive_probes', kind: 'counter', unit: '{probe}',
    description: 'Unanswered TCP keepalive probes observed on pooled sockets',
  },
  detectionTime: {
    name: 'pg_pool_guard.detection_time', kind: 'histogram', unit: 's', buckets: [0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30, 60],
    description: 'Time from the first evidence against a connection to its eviction',
  },
  passDuration: {
    name: 'pg_pool_guard.pass.duration', kind: 'histogram', unit: 's', buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.025, 0.1, 0.5],
    description: "Duration of one guard pass (TCP_INFO sampling and classification; with the /proc cross-check when it ran)",
  },
  probes: {
    name: 'pg_pool_guard.probes', kind: 'counter', unit: '{probe}',
    description: 'Host probes on a separate monitoring connection, by outcome (alive, dead)',
  },
  queryOutcomes: {
    name: 'pg_pool_guard.query.outcomes', kind: 'counter', unit: '{query}',
    description: 'Queries failed by an eviction, by what became of them (pg_pool_guard.outcome: not-sent, rolled-back, unknown)',
  },
  inDoubtResolved: {
    name: 'pg_pool_guard.in_doubt.resolved', kind: 'counter', unit: '{query}',
    description: 'In-doubt writes (outcome unknown) resolved with resolveInDoubt, by what the server said (pg_pool_guard.resolution: committed, rolled-back, unknown)',
  },
  foreignSockets: {
    name: 'pg_pool_guard.foreign_sockets', kind: 'observable-gauge', unit: '{socket}',
    description: 'Sockets this process holds to database ports that no guarded pool knows (another pool, a leaked client)',
  },
  regions: {
    name: 'pg_pool_guard.regions', kind: 'observable-gauge', unit: '{region}',
    description: 'Number of regions the pool holds sockets to (more than one under a single-writer policy: dual-region)',
  },
  writableHosts: {
    name: 'pg_pool_guard.writable_hosts', kind: 'observable-gauge', unit: '{host}',
    description: 'Number of distinct writable hosts the pool holds sockets to (more than one: split-brain exposure)',
  },
} as const satisfies Record<string, InstrumentSpec>

/**
 * Host health and replication, per host the pool knows (they sit apart from GUARD, whose entries
 * test/pg/metrics.test.ts requires on every pool: these appear only for hosts with something to report).
 * All carry pool.name and server.address/server.port of the host they describe.
 *
 * State gauges follow the shape of the semantic conventions' hw.status: one series per possible state,
 * 1 for the state the host is in and 0 for the others, so `== 1` selects the current state and a state
 * that never occurred still has a series (absent() is not needed to tell "healthy" from "not reported").
 * Their unit is the count annotation `{host}` (how many hosts are in that state: 0 or 1), not `1`: a gauge of
 * unit 1 is a ratio, and the OpenTelemetry Collector's Prometheus exporter would name it *_ratio.
 */
export const ATTR_HOST_STATE = 'pg_pool_guard.host.state'
export const HOST_STATE_HEALTHY = 'healthy'
export const HOST_STATE_DEGRADED = 'degraded'
export const ATTR_REPLICATION_STATE = 'pg_pool_guard.replication.state'
export const REPLICATION_STATE_OK = 'ok'
export const REPLICATION_STATE_LOST = 'lost'
/** Monitored, but the link cannot be judged now (host unreachable, details not shown, no standby expected). */
export const REPLICATION_STATE_UNKNOWN = 'unknown'

export const HOST_HEALTH = {
  health: {
    name: 'pg_pool_guard.host.health', kind: 'observable-gauge', unit: '{host}',
    description: 'Health of a database host as the pool sees it: 1 for its current pg_pool_guard.host.state (healthy, degraded), 0 for the other',
  },
  rtt: {
    name: 'pg_pool_guard.host.rtt', kind: 'observable-gauge', unit: 's',
    description: 'Smoothed round-trip time to the host on its pooled sockets (TCP_INFO tcpi_rtt)',
  },
  retransmitRatio: {
    name: 'pg_pool_guard.host.retransmit_ratio', kind: 'observable-gauge', unit: '1',
    description: 'Share of the segments sent to the host that were retransmitted, on its pooled sockets (0 to 1)',
  },
  queuedBytes: {
    name: 'pg_pool_guard.host.queued_bytes', kind: 'observable-gauge', unit: 'By',
    description: 'Bytes sent to the host and not yet acknowledged, on its pooled sockets (send queue)',
  },
} as const satisfies Record<string, InstrumentSpec>

export const REPLICATION = {
  state: {
    name: 'pg_pool_guard.replication.state', kind: 'observable-gauge', unit: '{host}',
    description: 'Replication link of a host as its monitor sees it (a standby: its upstream; a primary: its standbys): 1 for its current pg_pool_guard.replication.state (ok, lost, unknown), 0 for the others',
  },
  lag: {
    name: 'pg_pool_guard.replication.lag', kind: 'observable-gauge', unit: 's',
    description: 'On a primary: the largest replay lag of its streaming standbys (pg_stat_replication.replay_lag; absent once they caught up and idle)',
  },
} as const satisfies Record<string, InstrumentSpec>

/**
 * The fleet view (issue 21): what one instance measured, said so that N instances' measurements can be
 * compared across zones by PromQL (examples/prometheus/fleet-alerts.yml).
 *
 * ATTR_CLIENT_ZONE is the zone (or region, or datacenter) the measuring process runs in — guard option
 * `zone`, by default `cloud.availability_zone` (else `cloud.region`) of OTEL_RESOURCE_ATTRIBUTES, the same
 * value the SDK puts in the resource. It rides on every pg_pool_guard.* data point (one value per process:
 * no cardinality of its own), never on db.client.connection.* (the semantic conventions' set, and the
 * per-checkout histograms, stay as they are). The instance itself is the resource's service.instance.id,
 * which Prometheus sees as `instance` (its scrape target, or service.instance.id through the Collector).
 *
 * FLEET.hostStatus is the instance's judgement of each host it knows (configured, or discovered from a
 * primary), in the hw.status shape of HOST_HEALTH: down (a host-dead or host-unresponsive verdict, or its
 * monitor cannot reach it, until it answers again), degraded (the pool routes around it: its sockets' TCP
 * health), else up; a host the instance has not reached yet has no series. FLEET.writableTimeline says
 * which branch of the cluster's history the pool writes on: two instances of one pool on different
 * timelines are writing to two primaries.
 */
export const ATTR_CLIENT_ZONE = 'pg_pool_guard.client.zone'
export const ATTR_HOST_STATUS = 'pg_pool_guard.host.status'
export const HOST_STATUS_UP = 'up'
export const HOST_STATUS_DEGRADED = 'degraded'
export const HOST_STATUS_DOWN = 'down'

export const FLEET = {
  hostStatus: {
    name: 'pg_pool_guard.host.status', kind: 'observable-gauge', unit: '{host}',
    description: 'This instance\'s judgement of a database host: 1 for its current pg_pool_guard.host.status (up, degraded, down), 0 for the others',
  },
  writableTimeline: {
    name: 'pg_pool_guard.writable_host.timeline', kind: 'observable-gauge', unit: '{timeline}',
    description: 'Timeline of each writable host the pool holds sockets to, as its host monitor last read it (two instances of one pool on different timelines: two primaries)',
  },
} as const satisfies Record<string, InstrumentSpec>
