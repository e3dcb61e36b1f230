/**
 * The guard attached to one pg pool: a facade that builds the parts and answers questions about them.
 *
 *   pool and client events --> Lifecycle --> Registry (one record per client, one state, transition())
 *   Topology (host monitors, DNS) --facts-->  \
 *   Probes (finished probes)     --facts-->  Scheduler tick: facts --> judge (pure) --> Evictor (the one)
 *   Kernel port (TCP_INFO, /proc) --facts--> /                                   \--> probes, rechecks
 *
 * Every timer is unref'd; the guard keeps judging while the pool ends and stops when it has ended.
 */
import { EventEmitter } from 'node:events'
import type { MeterProvider } from '@opentelemetry/api'
import { inspect } from 'node:util'
import type { Client, Pool as PgPool } from 'pg'
import { ErrorCodes, PoolGuardError } from '../errors'
import type { HealthTransition, HostHealth } from '../judge/health-rules'
import type { HostSummary, ProbeResult } from '../judge/kernel-rules'
import { judgeLogin } from '../judge/login-rules'
import type { ReplicationTransition } from '../judge/replication-rules'
import { defaultKernel, type KernelPort } from '../kernel/port'
import { type GuardOptions, type ResolvedGuardOptions, resolveGuardOptions } from '../options'
import * as adapter from '../pg/adapter'
import { PoolMetrics, type PoolView, uniquePoolName } from '../telemetry/metrics'
import { connectPlanner } from '../topology/connect'
import type { Attempt, TargetSessionAttrs } from '../topology/hosts'
import { Regions } from '../topology/regions'
import { defaultLookup, type HostState, type ServerState, Topology } from '../topology/topology'
import { checkoutCheck } from './checkout'
import { type EvictionActions, type EvictionEvent, Evictor } from './evictor'
import { Housekeeping, type LeakReport } from './housekeeping'
import { InDoubtResolver, inDoubtWrite } from './in-doubt'
import { statementKinds } from '../judge/outcome-rules'
import { queriesOf, xidOf } from '../pg/in-flight'
import { Lifecycle, unguardedWarning } from './lifecycle'
import { Probes } from './probes'
import { type ForeignSocket, joinProcessView } from './process-view'
import { poolView } from './metrics-view'
import { queryRole, readPoolConfig } from './pool-config'
import { type ConnRecord, type ConnSnapshot, type ConnState, Registry, toSnapshot } from './registry'
import { Scheduler } from './scheduler'

export type { EvictionEvent, LeakReport }

/** A probe's deadline is at least this many times the host's measured login time (SCRAM is ~4 round trips). */
const PROBE_LOGIN_MULTIPLE = 4

/** The topology as the guard sees it: which host is primary, and each host's state. */
export interface TopologySnapshot {
  primary: string | null
  targetSessionAttrs: TargetSessionAttrs
  /** Configured hosts in list order, then standbys discovered from a primary (`discoveredFrom`). */
  hosts: HostState[]
  /** Servers by identity, as every source saw them: behind a VIP one host leads to several over time. */
  servers: ServerState[]
}

export interface GuardEvents {
  /** A host turned degraded or healthy again (from its sockets' TCP_INFO), with the evidence. */
  health: [HealthTransition]
  leak: [LeakReport]
  evict: [EvictionEvent]
  probe: [ProbeResult]
  /**
   * A host's replication link turned `lost` (a standby without its upstream, a primary without a standby:
   * the moment before a promotion) or `ok` again, with the evidence. A warning: nothing is evicted for it.
   */
  replication: [ReplicationTransition]
  topology: [HostState]
}

/** How the guard joins its pool: `binding` for a pool built with the guarded Client class (pool/pool.ts). */
export interface Attachment {
  binding?: adapter.HookBinding
  /** How to act on this owner's clients, where it is not a pg-pool (guard/standalone.ts). */
  actions?: EvictionActions
  /** Before the default pool name (server.address:server.port/db.namespace), e.g. 'standalone '. */
  namePrefix?: string
}

export class Guard extends EventEmitter<GuardEvents> {
  readonly options: ResolvedGuardOptions
  /** db.client.connection.pool.name of this pool's metrics. */
  readonly poolName: string
  private readonly pool: PgPool
  private readonly registry: Registry
  private readonly topo: Topology
  private readonly scheduler: Scheduler
  private readonly housekeeping: Housekeeping
  private readonly metrics: PoolMetrics
  private readonly passStats = { passes: 0, passMs: 0, procScans: 0, procScanMs: 0 }
  private readonly leave: () => void
  private readonly lifecycle: Lifecycle
  private readonly releaseName: () => void
  /** Per configured host:port, how long logins take here (EWMA, ms): probe deadlines follow it. */
  private readonly loginMs = new Map<string, number>()
  private readonly inDoubt: InDoubtResolver | undefined
  private endingPool = false
  private stopped = false

  constructor(pool: PgPool, options?: GuardOptions, attachment: Attachment = {}, kernel: KernelPort = defaultKernel()) {
    super()
    if (!adapter.claimPool(pool)) throw new PoolGuardError(ErrorCodes.ALREADY_GUARDED, 'this pool is already guarded')
    const o = (this.options = resolveGuardOptions(options))
    this.pool = pool
    const { poolOptions, hosts, targetSessionAttrs, loadBalanceHosts, defaultName, connectDeadlineMs, monitorConfig } = readPoolConfig(pool, options, o)
    const named = uniquePoolName(o.poolName ?? `${attachment.namePrefix ?? ''}${defaultName}`)
    this.poolName = named.name
    this.releaseName = named.release
    this.metrics = new PoolMetrics(this.poolName, o.metrics, o.meterProvider as MeterProvider | null, () => this.metricsView(), o.zone)
    const regions = new Regions(o.regions)
    const singleRegion = o.singleRegion ?? (regions.configured && (targetSessionAttrs === 'read-write' || targetSessionAttrs === 'primary'))
    const tcpHosts = hosts.filter((h) => !h.host.startsWith('/'))
    this.topo = new Topology({
      hosts, targetSessionAttrs, regions, loadBalanceHosts,
      lookup: o.lookup ?? defaultLookup,
      topologyIntervalMs: o.topologyIntervalMs,
      dnsIntervalMs: o.dnsIntervalMs,
      addressCheckIntervalMs: o.addressCheckIntervalMs,
      discoverStandbys: o.discoverStandbys ?? (tcpHosts.length === 1 && hosts.length === 1),
      holdsSocketsTo: (key) => this.registry.records().some((r) => r.state !== 'connecting' && `${r.configuredHost}:${r.configuredPort}` === key),
      timeoutMs: o.probeTimeoutMs,
      configFor: monitorConfig,
    })
    this.registry = new Registry(
      { transitioned: (rec, from, now) => this.transitioned(rec, from, now), connectDeadline: (rec, now) => lifecycle.connectDeadline(rec, now) },
      () => connectDeadlineMs
    )
    const sockopt = kernel.sockopt()
    const inDoubt = (this.inDoubt = o.resolveInDoubt
      ? new InDoubtResolver({ poolOptions, topology: this.topo, timeoutMs: o.probeTimeoutMs, onResolved: (r) => this.metrics.resolved(r) })
      : undefined)
    const evictor = new Evictor(
      this.registry,
      attachment.actions ?? {
        isIdle: (client) => adapter.isIdleInPool(pool, client),
        removeIdle: (client) => adapter.evictIdle(pool, client),
        destroy: adapter.destroyInUse,
        queriesOf,
        retire: adapter.retireOnRelease,
        failConnect: adapter.failConnect,
      },
      o.topologyEvictInUse,
      this.metrics,
      (e) => this.emit('evict', e),
      {
        // An RST instead of a FIN: no unacknowledged COMMIT leaves an orphaned socket to arrive after a heal.
        reset: sockopt.ok ? (fd) => void sockopt.sockopt.resetOnClose(fd) : undefined,
        inDoubt: inDoubt && ((rec, outcome, text) => {
          const commit = text !== null && statementKinds(text).includes('commit')
          const w = inDoubtWrite(rec, xidOf(rec.client), commit)
          if (outcome === 'unknown') return w ? inDoubt.track(w) : async () => 'unknown'
          if (outcome === 'rolled-back' && w) inDoubt.orphan(w)
          return undefined
        }),
      }
    )
    const probes = new Probes(
      poolOptions,
      (hostKey) => Math.max(o.probeTimeoutMs, PROBE_LOGIN_MULTIPLE * (this.loginMs.get(hostKey) ?? 0)),
      (r) => {
        this.metrics.probe(r.alive)
        this.emit('probe', r)
        this.scheduler.wake(true) // act on a failed probe at once
      },
      (hostKey) => this.topo.markUp(hostKey)
    )
    this.scheduler = new Scheduler({
      registry: this.registry, kernel, options: o, topology: this.topo, singleRegion, evictor, probes,
      beforeTick: () => this.metrics.maybeBind(), // an SDK registered after this pool: report from now on
      onHealth: (t) => this.emit('health', t),
      onReplication: (t) => this.emit('replication', t),
      onPass: (report) => {
        this.metrics.pass(report.durationMs, report.retransmits, report.probes)
        this.passStats.passes++
        this.passStats.passMs += report.durationMs
        if (report.crossCheck) {
          this.passStats.procScans++
          this.passStats.procScanMs += report.crossCheckMs
        }
      },
    })
    this.housekeeping = new Housekeeping(pool, this.registry, o, (r) => this.emit('leak', r))
    const lifecycle = (this.lifecycle = new Lifecycle({
      pool, registry: this.registry, kernel, options: o, regions, topology: this.topo, evictor,
      wake: () => this.scheduler.wake(),
      removed: () => this.housekeeping.wake(),
      identityLater: (client) => hooks.identityLater?.(client),
    }))
    this.topo.on('change', (h) => {
      this.emit('topology', h)
      this.scheduler.wake()
    })
    const hooks: adapter.PoolHooks = {
      ...connectPlanner({
        baseOptions: poolOptions, topology: this.topo, hosts, targetSessionAttrs, lookup: o.lookup, singleRegion, queryRole, waitForHostMs: o.waitForHostMs,
        isDegraded: (key) => this.scheduler.isDegraded(key),
        judgeLogin,
        identityAtLogin: o.resolveInDoubt,
        ownerHeld: attachment.actions !== undefined,
        sawIdentity: (client, identity, pooler, at) => {
          const rec = this.registry.get(client)
          if (rec) this.registry.noteIdentity(rec, identity, pooler, at)
        },
      }),
      clientCreated: (client, attempt) => lifecycle.created(client, (attempt as Attempt | undefined) ?? null),
      connectFailed: (err) => {
        if (adapter.isPoolTimeout(err)) this.metrics.timeout()
      },
      lifetimeSeconds: (configured) => configured * (1 - o.maxLifetimeJitter * Math.random()),
      checkout: checkoutCheck({ registry: this.registry, kernel, options: o, evictor }),
      ending: () => this.ending(),
      // pg-pool's own words for a caller after end(), with a code.
      endedError: () => new PoolGuardError(ErrorCodes.POOL_ENDED, 'Cannot use a pool after calling end on the pool', { outcome: 'not-sent' }),
    }
    // The per-checkout hook costs a closure per checkout: only while something reads what it records
    // (metrics bound to an SDK, now or later; leak detection).
    const checkoutHook = (): void => {
      hooks.connectCalled = () => ({ at: performance.now(), stack: o.leakDetectionThresholdMs > 0 ? new Error('acquired here').stack ?? '' : null })
      hooks.clientYielded = (client, tag) => {
        const t = tag as { at: number; stack: string | null }
        this.metrics.waitTime(performance.now() - t.at)
        const rec = this.registry.get(client)
        if (rec) this.registry.noteAcquiredStack(rec, t.stack)
      }
    }
    if (this.metrics.active || o.leakDetectionThresholdMs > 0) checkoutHook()
    else this.metrics.onBind(checkoutHook)
    if (attachment.binding) attachment.binding.hooks = hooks
    else adapter.patchPool(pool, hooks, unguardedWarning((pool as unknown as { Client: unknown }).Client))
    lifecycle.listen()
    // A pool that another library created may already hold clients.
    for (const client of adapter.clientsOf(pool)) if (adapter.canSeeInto(client)) lifecycle.adopt(client)
    this.leave = joinProcessView({
      inodes: () => this.registry.records().flatMap((r) => (r.inode === null ? [] : [r.inode])),
      ports: () => this.registry.records().map((r) => r.remotePort ?? r.configuredPort),
    })
    this.housekeeping.start()
    this.scheduler.start()
    this.topo.start()
  }

  /**
   * A client of this guard's owner that it did not see being built (standalone clients,
   * guard/standalone.ts): `connected` false follows it from its connect, true takes it as it is.
   */
  adopt(client: Client, connected: boolean): void {
    if (connected) this.lifecycle.adopt(client)
    else this.lifecycle.created(client, null)
  }

  /** One row per pooled client: where its socket goes, its kernel identity, role and state. No secrets. */
  snapshot(): ConnSnapshot[] {
    // pg-pool drops a client from its list at once and emits 'remove' only after the socket closed;
    // the snapshot follows the pool's list so that it agrees with totalCount.
    const members = new Set(adapter.clientsOf(this.pool))
    return this.registry
      .records()
      .filter((r) => members.has(r.client))
      .map((r) => toSnapshot(r, (r.server ? this.topo.servers.get(r.server.id)?.timeline : undefined) ?? this.topo.state(r.configuredHost, r.configuredPort)?.timeline ?? null))
  }

  /** The configured hosts: role, timeline, reachability, DNS answer, region, fencing, replication; and the primary. */
  topology(): TopologySnapshot {
    return {
      primary: this.topo.primary,
      targetSessionAttrs: this.topo.options.targetSessionAttrs,
      hosts: [...this.topo.hosts.values()].map((h) => ({ ...h, spec: { ...h.spec }, replication: { ...h.replication }, routes: h.routes.map((r) => ({ ...r })) })),
      servers: [...this.topo.servers.values()].map((x) => ({ ...x, role: x.role && { ...x.role } })),
    }
  }

  /**
   * Per remote endpoint (ip:port), as the last kernel pass saw it: sockets, active, progressing, stalled,
   * dead. (The configured hosts, with roles and fencing, are `topology().hosts`.)
   */
  endpoints(): HostSummary[] {
    return this.scheduler.hosts.map((h) => ({ ...h }))
  }

  /**
   * Per remote endpoint: `healthy` or `degraded` (RTT against its own baseline, retransmitted share of the
   * segments sent, queued bytes), from the TCP_INFO samples the guard already takes. A state to watch and
   * route by, never a reason to evict.
   */
  health(): HostHealth[] {
    return this.scheduler.health.map((h) => ({ ...h, metrics: { ...h.metrics } }))
  }

  /** @deprecated the name of endpoints() before 0.2. */
  hosts(): HostSummary[] {
    return this.endpoints()
  }

  /** Sockets this process holds to a database port that no guarded pool knows, from the last /proc cross-check. */
  foreignSockets(): ForeignSocket[] {
    return this.scheduler.foreign.map((f) => ({ ...f }))
  }

  /** What the guard's own work has cost so far: kernel passes and /proc cross-checks, count and total ms. */
  stats(): { passes: number; passMs: number; procScans: number; procScanMs: number } {
    return { ...this.passStats }
  }

  /**
   * Runs one tick now (normally the timer does, every checkIntervalMs). `crossCheck: true` also reads
   * /proc/net/tcp: fd identity, vanished sockets and the process-wide view (foreignSockets()).
   */
  check({ crossCheck = false }: { crossCheck?: boolean } = {}): void {
    this.scheduler.tick(Date.now(), { pass: true, crossCheck })
  }

  /** A summary: the guard holds the pool and its clients, whose options may carry credentials. */
  [inspect.custom](): string {
    return `Guard { connections: ${this.snapshot().length}, primary: ${this.topo.primary}, stopped: ${this.stopped} }`
  }

  /**
   * The same summary for JSON.stringify (a logger serialising the pool reaches `pool.guard`): the guard's
   * fields lead back to the pool (a cycle, which throws) and to options that may carry credentials.
   */
  toJSON(): { poolName: string; connections: number; primary: string | null; stopped: boolean } {
    return { poolName: this.poolName, connections: this.snapshot().length, primary: this.topo.primary, stopped: this.stopped }
  }

  /** Stops every timer and monitoring connection (also done when the pool has ended). */
  stop(): void {
    if (this.stopped) return
    this.stopped = true
    this.scheduler.stop()
    this.housekeeping.stop()
    this.topo.stop()
    this.registry.stop()
    this.inDoubt?.stop()
    this.metrics.close()
    this.leave()
    this.releaseName()
  }


  /**
   * pool.end() was called: no new work, but keep judging until the last socket is gone — pg-pool ends as soon
   * as its list is empty, while the idle clients it ended may still wait for a FIN from a dead host.
   */
  private ending(): void {
    this.endingPool = true
    this.housekeeping.stop()
    this.topo.stop()
    // The pool's metrics end with it (its name is free for a new pool); the judging goes on.
    this.metrics.close()
    this.releaseName()
    queueMicrotask(() => this.stopWhenEmpty())
  }

  private stopWhenEmpty(): void {
    if (this.endingPool && this.registry.records().length === 0) this.stop()
  }

  private transitioned(rec: ConnRecord, from: ConnState, now: number): void {
    const to = rec.state
    if (from === 'connecting' && (to === 'idle' || to === 'in-use')) {
      const ms = now - rec.createdAt
      this.metrics.createTime(ms)
      const key = `${rec.configuredHost}:${rec.configuredPort}`
      const before = this.loginMs.get(key)
      this.loginMs.set(key, before === undefined ? ms : before + (ms - before) / 4)
    }
    if (from === 'in-use' && rec.lastAcquiredAt !== null) this.metrics.useTime(now - rec.lastAcquiredAt)
    if (to === 'ended') queueMicrotask(() => this.stopWhenEmpty())
  }

  /** What the observable instruments read at collection time. */
  private metricsView(): PoolView {
    return poolView(this.pool, this.registry.records(), this.scheduler, this.topo, this.options.minIdle)
  }
}
