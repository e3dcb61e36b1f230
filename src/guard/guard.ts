/**
 * The guard attached to one pg pool: a facade over the parts that assemble.ts builds and wires (the data
 * flow is drawn there). It answers questions about them — snapshot, topology, endpoints, health — and ends
 * them: the guard keeps judging while the pool ends and stops when its last socket is gone.
 * Every timer is unref'd.
 */
import { EventEmitter } from 'node:events'
import { inspect } from 'node:util'
import type { Client, Pool as PgPool } from 'pg'
import { ErrorCodes, PoolGuardError } from '../errors'
import type { HostHealth } from '../judge/health-rules'
import type { HostSummary } from '../judge/kernel-rules'
import { defaultKernel, type KernelPort } from '../kernel/port'
import { type GuardOptions, type ResolvedGuardOptions, resolveGuardOptions } from '../options'
import { clientsOf } from '../pg/internals'
import { claimPool } from '../pg/pool-wrappers'
import type { TargetSessionAttrs } from '../topology/hosts'
import type { HostState, ServerState } from '../topology/topology'
import { assemble, type Emit, type Parts } from './assemble'
import type { Attachment, EvictionEvent, GuardEvents, LeakReport } from './events'
import { type ForeignSocket, joinProcessView } from './process-view'
import { type ConnSnapshot, toSnapshot } from './registry'

export type { Attachment, EvictionEvent, GuardEvents, LeakReport }


/** The topology as the guard sees it: which host is primary, and each host's state. */
export interface TopologySnapshot {
  primary: string | null
  targetSessionAttrs: TargetSessionAttrs
  /** Configured hosts in list order, then standbys discovered from a primary (`discoveredFrom`). */
  hosts: HostState[]
  /** Servers by identity, as every source saw them: behind a VIP one host leads to several over time. */
  servers: ServerState[]
}


export class Guard extends EventEmitter<GuardEvents> {
  readonly options: ResolvedGuardOptions
  /** db.client.connection.pool.name of this pool's metrics. */
  readonly poolName: string
  private readonly pool: PgPool
  private readonly parts: Parts
  private readonly leave: () => void
  private stopped = false

  constructor(pool: PgPool, options?: GuardOptions, attachment: Attachment = {}, kernel: KernelPort = defaultKernel()) {
    super()
    if (!claimPool(pool)) throw new PoolGuardError(ErrorCodes.ALREADY_GUARDED, 'this pool is already guarded')
    const o = (this.options = resolveGuardOptions(options))
    this.pool = pool
    const parts = (this.parts = assemble(pool, o, options, attachment, kernel, this.emit.bind(this) as Emit, () => this.ending(), () => queueMicrotask(() => this.stopWhenEmpty())))
    this.poolName = parts.poolName
    this.leave = joinProcessView({
      inodes: () => parts.registry.records().flatMap((r) => (r.inode === null ? [] : [r.inode])),
      ports: () => parts.registry.records().map((r) => r.remotePort ?? r.configuredPort),
    })
    parts.housekeeping.start()
    parts.scheduler.start()
    parts.topology.start()
  }

  /**
   * A client of this guard's owner that it did not see being built (standalone clients,
   * guard/standalone.ts): `connected` false follows it from its connect, true takes it as it is.
   */
  adopt(client: Client, connected: boolean): void {
    if (connected) this.parts.lifecycle.adopt(client)
    else this.parts.lifecycle.created(client, null)
  }

  /** A client of this guard's owner (standalone) finished connecting: in use from now. */
  connected(client: Client): void {
    this.parts.lifecycle.connected(client)
  }

  /** One row per pooled client: where its socket goes, its kernel identity, role and state. No secrets. */
  snapshot(): ConnSnapshot[] {
    // pg-pool drops a client from its list at once and emits 'remove' only after the socket closed;
    // the snapshot follows the pool's list so that it agrees with totalCount.
    const members = new Set(clientsOf(this.pool))
    const { registry, topology } = this.parts
    return registry
      .records()
      .filter((r) => members.has(r.client))
      .map((r) => toSnapshot(r, (r.server ? topology.servers.get(r.server.id)?.timeline : undefined) ?? topology.state(r.configuredHost, r.configuredPort)?.timeline ?? null))
  }

  /** The configured hosts: role, timeline, reachability, DNS answer, region, fencing, replication; and the primary. */
  topology(): TopologySnapshot {
    const t = this.parts.topology
    return {
      primary: t.primary,
      targetSessionAttrs: t.options.targetSessionAttrs,
      hosts: [...t.hosts.values()].map((h) => ({ ...h, spec: { ...h.spec }, replication: { ...h.replication }, routes: h.routes.map((r) => ({ ...r })), serversSeen: [...h.serversSeen] })),
      servers: [...t.servers.values()].map((x) => ({ ...x, role: x.role && { ...x.role } })),
    }
  }

  /**
   * Per remote endpoint (ip:port), as the last kernel pass saw it: sockets, active, progressing, stalled,
   * dead. (The configured hosts, with roles and fencing, are `topology().hosts`.)
   */
  endpoints(): HostSummary[] {
    return this.parts.scheduler.hosts.map((h) => ({ ...h }))
  }

  /**
   * Per remote endpoint: `healthy` or `degraded` (RTT against its own baseline, retransmitted share of the
   * segments sent, queued bytes), from the TCP_INFO samples the guard already takes. A state to watch and
   * route by, never a reason to evict.
   */
  health(): HostHealth[] {
    return this.parts.scheduler.health.map((h) => ({ ...h, metrics: { ...h.metrics } }))
  }

  /** @deprecated the name of endpoints() before 0.2. */
  hosts(): HostSummary[] {
    return this.endpoints()
  }

  /** Sockets this process holds to a database port that no guarded pool knows, from the last /proc cross-check. */
  foreignSockets(): ForeignSocket[] {
    return this.parts.scheduler.foreign.map((f) => ({ ...f }))
  }

  /** What the guard's own work has cost so far: kernel passes and /proc cross-checks, count and total ms. */
  stats(): { passes: number; passMs: number; procScans: number; procScanMs: number } {
    return { ...this.parts.passStats }
  }

  /**
   * Runs one tick now (normally the timer does, every checkIntervalMs). `crossCheck: true` also reads
   * /proc/net/tcp: fd identity, vanished sockets and the process-wide view (foreignSockets()).
   */
  check({ crossCheck = false }: { crossCheck?: boolean } = {}): void {
    this.parts.scheduler.tick(Date.now(), { pass: true, crossCheck })
  }

  /** A summary: the guard holds the pool and its clients, whose options may carry credentials. */
  [inspect.custom](): string {
    return `Guard { connections: ${this.snapshot().length}, primary: ${this.parts.topology.primary}, stopped: ${this.stopped} }`
  }

  /**
   * The same summary for JSON.stringify (a logger serialising the pool reaches `pool.guard`): the guard's
   * fields lead back to the pool (a cycle, which throws) and to options that may carry credentials.
   */
  toJSON(): { poolName: string; connections: number; primary: string | null; stopped: boolean } {
    return { poolName: this.poolName, connections: this.snapshot().length, primary: this.parts.topology.primary, stopped: this.stopped }
  }

  /** Stops every timer and monitoring connection (also done when the pool has ended). */
  stop(): void {
    if (this.stopped) return
    this.stopped = true
    const p = this.parts
    p.registry.poolTransition('ended')
    p.scheduler.stop()
    p.housekeeping.stop()
    p.topology.stop()
    p.hostProbes.stop()
    p.registry.stop()
    p.inDoubt?.stop()
    p.metrics.close()
    this.leave()
    p.releaseName()
    p.releaseClock()
  }

  /**
   * pool.end() was called: no new work, but keep judging until the last socket is gone — pg-pool ends as soon
   * as its list is empty, while the idle clients it ended may still wait for a FIN from a dead host.
   */
  private ending(): void {
    const p = this.parts
    p.registry.poolTransition('ending')
    p.housekeeping.stop()
    p.topology.stop()
    // The pool's metrics end with it (its name is free for a new pool); the judging goes on.
    p.metrics.close()
    p.releaseName()
    queueMicrotask(() => this.stopWhenEmpty())
  }

  private stopWhenEmpty(): void {
    if (this.parts.registry.pool === 'ending' && this.parts.registry.records().length === 0) this.stop()
  }
}
