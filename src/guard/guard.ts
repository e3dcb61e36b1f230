/**
 * The guard attached to one pg pool. It wires the parts together and owns the one place where a
 * connection is evicted:
 *   pool events -> registry  (one record per client; hardened socket, role, region)
 *   monitor     -> kernel verdicts (zombies, probes)         \
 *   topology    -> topology verdicts (fenced, stale DNS, ...) -> evict()
 *   housekeeping -> leaks, warm idle clients
 * Every timer is unref'd and stops when the pool ends.
 */
import { EventEmitter } from 'node:events'
import { inspect } from 'node:util'
import pg from 'pg'
import type { Client, Pool as PgPool } from 'pg'
import { ConnectionEvictedError, ErrorCodes, warnOnce } from '../errors'
import { type GuardOptions, type ResolvedGuardOptions, resolveGuardOptions } from '../options'
import {
  backendPidOf,
  clientConfigFor,
  clientsOf,
  destroyInUse,
  evictIdle,
  fdOf,
  installPoolHooks,
  isIdleInPool,
  isPoolTimeout,
  lookupStream,
  onParameterStatus,
  onSocketConnected,
  rawSocketOf,
  retireOnFatal,
  retireOnRelease,
} from '../pool/pg-adapter'
import { hardenSocket } from '../socket/harden'
import { tcpStateName } from '../socket/tcp-info'
import { PoolMetrics, type PoolView, uniquePoolName } from '../telemetry/metrics'
import { type ConnectPlanner, connectPlanner } from '../topology/connect'
import { type HostSpec, parseHosts, roleName, type ServerRole, type TargetSessionAttrs } from '../topology/hosts'
import { Regions } from '../topology/regions'
import { defaultLookup, type HostState, Topology } from '../topology/topology'
import type { HostSummary, ProbeResult } from './classifier'
import { Housekeeping, type LeakReport } from './housekeeping'
import { endpointOf, type ForeignSocket, Monitor } from './monitor'
import { type ConnRecord, type ConnSnapshot, type EvictionReason, Registry, recordSocket } from './registry'

export type { LeakReport }

/** What the guard did to one connection, and why. */
export interface EvictionEvent {
  id: number
  reason: EvictionReason
  /** The host and port the client was configured for. */
  host: string
  port: number
  /** The endpoint the socket was connected to ("ip:port"). */
  endpoint: string
  backendPid: number | null
  evidence: string
  /** true: the client was in use — its socket destroyed (or, with topologyEvictInUse 'release', retired on release). */
  inUse: boolean
  firstEvidenceAt: number
  at: number
}

/** The topology as the guard sees it: which host is primary, and each host's state. */
export interface TopologySnapshot {
  primary: string | null
  targetSessionAttrs: TargetSessionAttrs
  hosts: HostState[]
}

export interface GuardEvents {
  leak: [LeakReport]
  evict: [EvictionEvent]
  probe: [ProbeResult]
  topology: [HostState]
}

const KERNEL_DEAD = new Set<EvictionReason>(['host-dead', 'zombie-unacked', 'zombie-keepalive', 'host-unresponsive'])

export class Guard extends EventEmitter<GuardEvents> {
  readonly options: ResolvedGuardOptions
  readonly registry = new Registry()
  private readonly pool: PgPool
  private readonly monitor: Monitor
  private readonly housekeeping: Housekeeping
  private readonly topo: Topology
  private readonly planner: ConnectPlanner | undefined
  private readonly singleRegion: boolean
  private readonly regions: Regions
  private readonly passStats = { passes: 0, passMs: 0, procScans: 0, procScanMs: 0 }
  private readonly metrics: PoolMetrics
  private readonly releaseName: () => void
  private stopped = false
  /** Something topology verdicts depend on changed (host state, a socket joined, a role report). */
  private topologyDirty = true
  /** db.client.connection.pool.name of this pool's metrics. */
  readonly poolName: string

  constructor(pool: PgPool, options?: GuardOptions) {
    super()
    this.options = resolveGuardOptions(options)
    this.pool = pool
    const o = this.options
    const poolOptions = baseOptionsOf(pool)
    const parsed = parseHosts(poolOptions)
    if (parsed.connectionString !== undefined) poolOptions.connectionString = parsed.connectionString
    const hosts = parsed.hosts.length > 0 ? parsed.hosts : [defaultHost(poolOptions)]
    const targetSessionAttrs = options?.targetSessionAttrs ?? parsed.targetSessionAttrs ?? 'any'
    const named = uniquePoolName(o.poolName ?? defaultPoolName(hosts, poolOptions))
    this.poolName = named.name
    this.releaseName = named.release
    this.metrics = new PoolMetrics(this.poolName, o.metrics, o.meterProvider, () => this.metricsView())
    this.regions = new Regions(o.regions)
    this.singleRegion = o.singleRegion ?? (this.regions.configured && (targetSessionAttrs === 'read-write' || targetSessionAttrs === 'primary'))
    this.topo = new Topology({
      hosts,
      targetSessionAttrs,
      loadBalanceHosts: options?.loadBalanceHosts ?? parsed.loadBalanceHosts ?? 'disable',
      regions: this.regions,
      lookup: o.lookup ?? defaultLookup,
      topologyIntervalMs: o.topologyIntervalMs,
      dnsIntervalMs: o.dnsIntervalMs,
      timeoutMs: o.probeTimeoutMs,
      configFor: (spec: HostSpec) =>
        clientConfigFor(poolOptions, spec.host, spec.port, {
          connectionTimeoutMillis: o.probeTimeoutMs,
          keepAlive: false,
          application_name: 'pg-pool-guard monitor',
          ...(o.lookup && poolOptions.stream === undefined ? { stream: lookupStream(o.lookup) } : {}),
        }),
    })
    this.planner = connectPlanner({
      baseOptions: poolOptions,
      topology: this.topo,
      hosts,
      targetSessionAttrs,
      lookup: o.lookup,
      attemptTimeoutMs: o.connectAttemptTimeoutMs,
      singleRegion: this.singleRegion,
      reportedRole: (client) => this.registry.get(client)?.serverRole ?? null,
      queryRole,
      attemptOf: (client) => this.registry.get(client)?.attempt ?? undefined,
    })
    installPoolHooks(pool, {
      ...this.planner?.hooks,
      clientCreated: (client) => this.track(client),
      // Wrapping pool.connect costs a closure per checkout: only when something reads what it records.
      connectCalled: this.metrics.active || o.leakDetectionThresholdMs > 0
        ? () => ({ at: performance.now(), stack: o.leakDetectionThresholdMs > 0 ? new Error('acquired here').stack ?? '' : null })
        : undefined,
      clientYielded: (client, tag) => {
        const t = tag as { at: number; stack: string | null }
        this.metrics.waitTime(performance.now() - t.at)
        const rec = this.registry.get(client)
        if (rec) rec.acquiredStack = t.stack
      },
      connectFailed: (err) => {
        if (isPoolTimeout(err)) this.metrics.timeout()
      },
      lifetimeSeconds: (configured) => configured * (1 - o.maxLifetimeJitter * Math.random()),
      ending: () => this.stop(),
    })
    this.monitor = new Monitor({
      pool,
      poolOptions,
      registry: this.registry,
      options: o,
      evict: (rec, v) => this.evict(rec, v.kind, v.evidence, v.firstEvidenceAt),
      onProbe: (r) => {
        this.metrics.probe(r.alive)
        this.emit('probe', r)
      },
      onPass: (report) => {
        this.metrics.pass(report.durationMs, report.retransmits, report.probes)
        this.passStats.passes++
        this.passStats.passMs += report.durationMs
        if (report.procScan) {
          this.passStats.procScans++
          this.passStats.procScanMs += report.procScanMs
        }
        this.topologyPass()
      },
    })
    this.housekeeping = new Housekeeping(pool, this.registry, o, (r) => this.emit('leak', r))
    this.topo.on('change', (h) => {
      this.emit('topology', h)
      this.topologyDirty = true
      this.topologyPass()
    })
    this.listen()
    // A pool that another library created may already hold clients.
    for (const client of clientsOf(pool)) {
      const rec = this.track(client)
      this.socketConnected(rec)
      rec.backendPid = backendPidOf(client)
      this.registry.setState(rec, isIdleInPool(pool, client) ? 'idle' : 'in-use')
    }
    this.housekeeping.start()
    this.monitor.start()
    this.topo.start()
  }

  /** One row per pooled client: where its socket goes, its kernel identity, role and state. No secrets. */
  snapshot(): ConnSnapshot[] {
    // pg-pool drops a client from its list at once and emits 'remove' only after the socket closed;
    // the snapshot follows the pool's list so that it agrees with totalCount.
    const members = new Set(clientsOf(this.pool))
    for (const rec of this.registry.records()) rec.timeline = this.topo.state(rec.configuredHost, rec.configuredPort)?.timeline ?? null
    return this.registry.snapshot((rec) => members.has(rec.client))
  }

  /** The configured hosts: role, timeline, reachability, DNS answer, region, fencing; and the primary. */
  topology(): TopologySnapshot {
    return {
      primary: this.topo.primary,
      targetSessionAttrs: this.topo.options.targetSessionAttrs,
      hosts: [...this.topo.hosts.values()].map((h) => ({ ...h, spec: { ...h.spec } })),
    }
  }

  /** Per remote endpoint, as the last kernel pass saw it: sockets, active, progressing, stalled, dead. */
  hosts(): HostSummary[] {
    return this.monitor.hosts.map((h) => ({ ...h }))
  }

  /**
   * Sockets this process holds to a database port that no guarded pool knows (a second, unguarded pool or
   * a leaked client), from the last /proc cross-check.
   */
  foreignSockets(): ForeignSocket[] {
    return this.monitor.foreign.map((f) => ({ ...f }))
  }

  /** What the guard's own work has cost so far: kernel passes and /proc cross-checks, count and total ms. */
  stats(): { passes: number; passMs: number; procScans: number; procScanMs: number } {
    return { ...this.passStats }
  }

  /**
   * Runs one kernel pass now (normally the timer does, every checkIntervalMs). `crossCheck: true` also
   * reads /proc/net/tcp: fd identity, vanished sockets and the process-wide view (foreignSockets()).
   */
  check({ crossCheck = false }: { crossCheck?: boolean } = {}): void {
    this.monitor.tick(Date.now(), { procScan: crossCheck })
  }

  /** A summary: the guard holds the pool and its clients, whose options may carry credentials. */
  [inspect.custom](): string {
    return `Guard { connections: ${this.snapshot().length}, primary: ${this.topo.primary}, stopped: ${this.stopped} }`
  }

  /** Stops every timer and monitoring connection; called when the pool ends. */
  stop(): void {
    this.stopped = true
    this.monitor.stop()
    this.housekeeping.stop()
    this.topo.stop()
    this.metrics.close()
    this.releaseName()
  }

  /**
   * The one place a connection is evicted. Idle: removed from the pool now, as pg-pool's idle timeout
   * would ('remove' emitted). In use: its socket is destroyed, so the running query rejects at once with
   * ConnectionEvictedError, and pg-pool drops the client on release — or, for topology verdicts with
   * topologyEvictInUse 'release', the client finishes and is retired on release.
   */
  private evict(rec: ConnRecord, reason: EvictionReason, evidence: string, firstEvidenceAt: number): void {
    const now = Date.now()
    const inUse = !isIdleInPool(this.pool, rec.client)
    rec.verdict = { kind: reason, evidence, at: now, firstEvidenceAt }
    this.metrics.verdict(reason)
    const gentle = inUse && !KERNEL_DEAD.has(reason) && reason !== 'peer-closed' && reason !== 'vanished' && this.options.topologyEvictInUse === 'release'
    if (gentle) {
      retireOnRelease(rec.client)
    } else {
      this.registry.setState(rec, 'evicting')
      this.metrics.evicted(reason, inUse, now - firstEvidenceAt)
      if (inUse) destroyInUse(rec.client, new ConnectionEvictedError(reason, rec.configuredHost, rec.configuredPort, evidence))
      else evictIdle(this.pool, rec.client)
    }
    if (reason === 'host-dead' || reason === 'host-unresponsive') this.topo.markDown(rec.configuredHost, rec.configuredPort, evidence)
    this.emit('evict', {
      id: rec.id,
      reason,
      host: rec.configuredHost,
      port: rec.configuredPort,
      endpoint: endpointOf(rec),
      backendPid: rec.backendPid,
      evidence,
      inUse,
      firstEvidenceAt,
      at: now,
    })
  }

  /** What the observable instruments read at collection time. */
  private metricsView(): PoolView {
    const pool = this.pool as PgPool & { options: { max: number; min?: number } }
    const recs = this.registry.records().filter((r) => r.state !== 'closed')
    const members = new Set(clientsOf(this.pool))
    const live = recs.filter((r) => members.has(r.client) && r.state !== 'connecting')
    const idle = pool.idleCount
    const regions = new Set(live.map((r) => r.region).filter((x) => x !== null))
    const writable = new Set(live.filter((r) => r.role === 'primary' && r.readOnly === false).map((r) => endpointOf(r)))
    return {
      idle,
      used: Math.max(0, live.length - idle),
      max: pool.options.max,
      idleMax: pool.options.max,
      idleMin: Math.max(pool.options.min ?? 0, this.options.minIdle),
      pending: pool.waitingCount,
      sockets: live.map((r) => ({
        tcpState: r.kernel ? tcpStateName(r.kernel.state) : 'unknown',
        address: r.remoteAddress ?? r.configuredHost,
        port: r.remotePort ?? r.configuredPort,
        region: r.region,
        role: r.role,
      })),
      foreignSockets: this.monitor.foreign.length,
      regions: regions.size,
      writableHosts: writable.size,
    }
  }

  /** Topology verdicts for every pooled socket (cheap: no I/O); runs after each kernel pass and topology change. */
  private topologyPass(): void {
    if (this.stopped || !this.topologyDirty) return
    this.topologyDirty = false
    const recs = this.registry.records().filter((r) => (r.state === 'idle' || r.state === 'in-use') && r.verdict === null)
    if (recs.length === 0) return
    const byId = new Map(recs.map((r) => [r.id, r]))
    const verdicts = this.topo.verdicts(
      recs.map((r) => ({
        id: r.id,
        hostKey: `${r.configuredHost}:${r.configuredPort}`,
        ip: r.remoteAddress,
        role: r.serverRole,
        roleAt: r.serverRoleAt,
        region: r.region,
      })),
      this.singleRegion
    )
    const now = Date.now()
    for (const v of verdicts) {
      const rec = byId.get(v.id)
      if (rec) this.evict(rec, v.kind, v.evidence, now)
    }
  }

  private track(client: Client): ConnRecord {
    const rec = this.registry.add(client, client.host, client.port, Date.now())
    rec.attempt = this.planner?.current() ?? null
    onSocketConnected(client, () => this.socketConnected(rec))
    client.once('end', () => this.registry.setState(rec, 'closed'))
    retireOnFatal(client)
    const reported: Partial<ServerRole> = {}
    onParameterStatus(client, (name, value) => {
      if (name === 'in_hot_standby') reported.inHotStandby = value === 'on'
      else if (name === 'default_transaction_read_only') reported.readOnly = value === 'on'
      else return
      if (reported.inHotStandby === undefined) return
      const role: ServerRole = { inHotStandby: reported.inHotStandby, readOnly: reported.readOnly ?? false }
      rec.serverRole = role
      rec.serverRoleAt = Date.now()
      this.topologyDirty = true
      rec.role = roleName(role)
      rec.readOnly = role.readOnly
      // Pushed again when a standby is promoted under this session: the topology hears it at once.
      if (rec.state === 'idle' || rec.state === 'in-use') this.topo.noteRole(rec.configuredHost, rec.configuredPort, role)
    })
    // pg emits a checked-out client's connection error on the client, and throws it when nobody listens;
    // the running query has already rejected with it, so a coded warning is enough.
    client.on('error', (err: Error) => {
      if (client.listenerCount('error') > 1) return
      warnOnce(ErrorCodes.CLIENT_ERROR, `client of ${rec.configuredHost}:${rec.configuredPort} failed with no 'error' listener: ${err.message}`, err.message)
    })
    return rec
  }

  private socketConnected(rec: ConnRecord): void {
    const socket = rawSocketOf(rec.client)
    if (!socket) return
    const fd = fdOf(socket)
    recordSocket(rec, socket, fd)
    rec.region = this.regions.regionOf(rec.configuredHost, rec.remoteAddress)
    rec.socketOptions = hardenSocket(socket, fd, this.options)
    this.topologyDirty = true
  }

  private listen(): void {
    const pool = this.pool
    pool.on('connect', (client) => {
      const rec = this.registry.get(client)
      if (!rec) return
      this.topologyDirty = true // a new socket to judge
      this.metrics.createTime(Date.now() - rec.createdAt)
      rec.backendPid = backendPidOf(client)
      if (rec.serverRole) this.topo.noteRole(rec.configuredHost, rec.configuredPort, rec.serverRole)
    })
    pool.on('acquire', (client) => {
      const rec = this.registry.get(client)
      if (!rec) return
      rec.lastAcquiredAt = Date.now()
      rec.uses++
      rec.leakReported = false
      this.registry.setState(rec, 'in-use')
    })
    pool.on('release', (_err, client) => {
      const rec = this.registry.get(client)
      if (!rec) return
      if (rec.lastAcquiredAt !== null) this.metrics.useTime(Date.now() - rec.lastAcquiredAt)
      if (rec.state === 'evicting') return
      rec.lastReleasedAt = Date.now()
      rec.acquiredStack = null
      this.registry.setState(rec, 'idle')
    })
    pool.on('remove', (client) => {
      const rec = this.registry.get(client)
      // A client retired on release (topologyEvictInUse 'release') leaves the pool only now.
      if (rec?.verdict && rec.state !== 'evicting') this.metrics.evicted(rec.verdict.kind, true, Date.now() - rec.verdict.firstEvidenceAt)
      if (rec) this.registry.setState(rec, 'closed')
      this.housekeeping.keepWarm()
    })
    // pg.Pool throws an idle client's error as unhandled when nobody listens; we report it instead.
    pool.on('error', (err) => {
      if (pool.listenerCount('error') > 1) return
      warnOnce(ErrorCodes.IDLE_CLIENT_ERROR, `idle client error with no 'error' listener on the pool: ${err.message}`, err.message)
    })
  }
}

/**
 * The pool's options as the guard uses them to build configs of its own (attempts, monitors, probes):
 * a copy keeping property descriptors (the password stays non-enumerable).
 */
function baseOptionsOf(pool: PgPool): Record<string, unknown> {
  const options = (pool as unknown as { options: object }).options
  return Object.defineProperties({}, Object.getOwnPropertyDescriptors(options))
}

/** The host pg would use when none is configured (PGHOST, defaults), read from a client that never connects. */
function defaultHost(options: Record<string, unknown>): HostSpec {
  const c = new pg.Client(options as pg.ClientConfig)
  return { host: c.host, port: c.port }
}

/** server.address:server.port/db.namespace, as the semantic conventions suggest; no credentials. */
function defaultPoolName(hosts: HostSpec[], options: Record<string, unknown>): string {
  let database = typeof options.database === 'string' ? options.database : undefined
  if (database === undefined) database = new pg.Client(options as pg.ClientConfig).database ?? ''
  return `${hosts.map((h) => `${h.host}:${h.port}`).join(',')}/${database}`
}

/** PostgreSQL < 14 does not report in_hot_standby: ask. */
async function queryRole(client: Client): Promise<ServerRole> {
  const { rows } = await client.query("SELECT pg_is_in_recovery() AS standby, current_setting('transaction_read_only') = 'on' AS ro")
  return { inHotStandby: rows[0].standby, readOnly: rows[0].ro }
}
