/**
 * The guard attached to one pg pool: it follows the pool's events into the registry, hardens each socket
 * as it connects, and runs the housekeeping HikariCP users expect (leak detection, lifetime jitter,
 * kept-warm idle clients). All its timers are unref'd and stop when the pool ends.
 */
import { EventEmitter } from 'node:events'
import { inspect } from 'node:util'
import type { Client, Pool as PgPool, PoolClient } from 'pg'
import { ConnectionEvictedError, ErrorCodes, warnOnce } from '../errors'
import { type GuardOptions, type ResolvedGuardOptions, resolveGuardOptions } from '../options'
import {
  backendPidOf,
  clientsOf,
  destroyInUse,
  evictIdle,
  fdOf,
  installPoolHooks,
  isIdleInPool,
  onSocketConnected,
  openIdleClient,
  rawSocketOf,
} from '../pool/pg-adapter'
import { hardenSocket } from '../socket/harden'
import type { HostSummary, ProbeResult, Verdict, VerdictKind } from './classifier'
import { type ForeignSocket, Monitor, endpointOf } from './monitor'
import { type ConnRecord, type ConnSnapshot, Registry, recordSocket } from './registry'

export interface LeakReport {
  id: number
  host: string
  port: number
  heldMs: number
  /** Stack of the pool.connect() call that acquired the client. */
  stack: string
}

/** What the guard did to one connection, and why. */
export interface EvictionEvent {
  id: number
  reason: VerdictKind
  /** The host and port the pool was configured with. */
  host: string
  port: number
  /** The endpoint the socket was connected to ("ip:port"). */
  endpoint: string
  backendPid: number | null
  evidence: string
  /** true: the socket was destroyed under its holder (a query in flight gets ConnectionEvictedError). */
  inUse: boolean
  firstEvidenceAt: number
  at: number
}

export interface GuardEvents {
  leak: [LeakReport]
  evict: [EvictionEvent]
  probe: [ProbeResult]
}

export class Guard extends EventEmitter<GuardEvents> {
  readonly options: ResolvedGuardOptions
  readonly registry = new Registry()
  private readonly pool: PgPool
  private readonly monitor: Monitor
  private readonly passStats = { passes: 0, passMs: 0, procScans: 0, procScanMs: 0 }
  private housekeepingTimer: NodeJS.Timeout | undefined
  private warming = 0
  private stopped = false

  constructor(pool: PgPool, options?: GuardOptions) {
    super()
    this.options = resolveGuardOptions(options)
    this.pool = pool
    installPoolHooks(pool, {
      clientCreated: (client) => this.track(client),
      connectCalled: this.options.leakDetectionThresholdMs > 0 ? () => new Error('acquired here').stack ?? '' : undefined,
      clientYielded: (client, stack) => {
        const rec = this.registry.get(client)
        if (rec) rec.acquiredStack = stack as string
      },
      lifetimeSeconds: (configured) => configured * (1 - this.options.maxLifetimeJitter * Math.random()),
      ending: () => this.stop(),
    })
    this.monitor = new Monitor({
      pool,
      registry: this.registry,
      options: this.options,
      evict: (rec, v) => this.evict(rec, v),
      onProbe: (r) => this.emit('probe', r),
      onPass: (report) => {
        this.passStats.passes++
        this.passStats.passMs += report.durationMs
        if (report.procScan) {
          this.passStats.procScans++
          this.passStats.procScanMs += report.procScanMs
        }
      },
    })
    this.listen()
    // A pool that another library created may already hold clients.
    for (const client of clientsOf(pool)) {
      const rec = this.track(client)
      this.socketConnected(rec)
      rec.backendPid = backendPidOf(client)
      this.registry.setState(rec, isIdleInPool(pool, client) ? 'idle' : 'in-use')
    }
    this.startHousekeeping()
    this.monitor.start()
  }

  /** What the guard's own work has cost so far: kernel passes and /proc cross-checks, count and total ms. */
  stats(): { passes: number; passMs: number; procScans: number; procScanMs: number } {
    return { ...this.passStats }
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

  /**
   * Runs one kernel pass now (normally the timer does, every checkIntervalMs). `crossCheck: true` also
   * reads /proc/net/tcp: fd identity, vanished sockets and the process-wide view (foreignSockets()).
   */
  check({ crossCheck = false }: { crossCheck?: boolean } = {}): void {
    this.monitor.tick(Date.now(), { procScan: crossCheck })
  }

  /**
   * Idle: removed from the pool now, as pg-pool's idle timeout would ('remove' emitted). In use: its
   * socket is destroyed so the running query rejects at once with ConnectionEvictedError; pg-pool drops the
   * client on release and the next caller gets a fresh connection.
   */
  private evict(rec: ConnRecord, v: Verdict): void {
    const now = Date.now()
    const inUse = !isIdleInPool(this.pool, rec.client)
    rec.verdict = { kind: v.kind, evidence: v.evidence, at: now, firstEvidenceAt: v.firstEvidenceAt }
    this.registry.setState(rec, 'evicting')
    if (inUse) {
      destroyInUse(rec.client, new ConnectionEvictedError(v.kind, rec.configuredHost, rec.configuredPort, v.evidence))
    } else {
      evictIdle(this.pool, rec.client)
    }
    this.emit('evict', {
      id: rec.id,
      reason: v.kind,
      host: rec.configuredHost,
      port: rec.configuredPort,
      endpoint: endpointOf(rec),
      backendPid: rec.backendPid,
      evidence: v.evidence,
      inUse,
      firstEvidenceAt: v.firstEvidenceAt,
      at: now,
    })
  }

  /** One row per pooled client: where its socket goes, its kernel identity and its state. No secrets. */
  snapshot(): ConnSnapshot[] {
    // pg-pool drops a client from its list at once and emits 'remove' only after the socket closed;
    // the snapshot follows the pool's list so that it agrees with totalCount.
    const members = new Set(clientsOf(this.pool))
    return this.registry.snapshot((rec) => members.has(rec.client))
  }

  private track(client: Client): ConnRecord {
    const rec = this.registry.add(client, client.host, client.port, Date.now())
    onSocketConnected(client, () => this.socketConnected(rec))
    client.once('end', () => this.registry.setState(rec, 'closed'))
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
    rec.socketOptions = hardenSocket(socket, fd, this.options)
  }

  private listen(): void {
    const pool = this.pool
    pool.on('connect', (client) => {
      const rec = this.registry.get(client)
      if (rec) rec.backendPid = backendPidOf(client)
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
      if (!rec || rec.state === 'evicting') return
      rec.lastReleasedAt = Date.now()
      rec.acquiredStack = null
      this.registry.setState(rec, 'idle')
    })
    pool.on('remove', (client) => {
      const rec = this.registry.get(client)
      if (rec) this.registry.setState(rec, 'closed')
      this.keepWarm()
    })
    // pg.Pool throws an idle client's error as unhandled when nobody listens; we report it instead.
    pool.on('error', (err) => {
      if (pool.listenerCount('error') > 1) return
      warnOnce(ErrorCodes.IDLE_CLIENT_ERROR, `idle client error with no 'error' listener on the pool: ${err.message}`, err.message)
    })
  }

  private startHousekeeping(): void {
    const leakMs = this.options.leakDetectionThresholdMs
    const everyMs = leakMs > 0 ? Math.min(1000, Math.max(50, leakMs / 4)) : 1000
    if (leakMs === 0 && this.options.minIdle === 0) return
    this.housekeepingTimer = setInterval(() => this.housekeeping(), everyMs).unref()
    this.keepWarm()
  }

  private housekeeping(): void {
    this.checkLeaks(Date.now())
    this.keepWarm()
  }

  private checkLeaks(now: number): void {
    const threshold = this.options.leakDetectionThresholdMs
    if (threshold === 0) return
    for (const rec of this.registry.records()) {
      if (rec.state !== 'in-use' || rec.leakReported || rec.lastAcquiredAt === null) continue
      const heldMs = now - rec.lastAcquiredAt
      if (heldMs < threshold) continue
      rec.leakReported = true
      const report: LeakReport = {
        id: rec.id,
        host: rec.configuredHost,
        port: rec.configuredPort,
        heldMs,
        stack: rec.acquiredStack ?? '(acquired before the guard attached)',
      }
      if (this.listenerCount('leak') > 0) {
        this.emit('leak', report)
      } else {
        process.emitWarning(
          `pg-pool-guard: client to ${report.host}:${report.port} held for ${heldMs} ms (leakDetectionThresholdMs ${threshold}); ${report.stack}`,
          { code: ErrorCodes.LEAK_DETECTED }
        )
      }
    }
  }

  /** Open idle clients in the background until minIdle are idle, never beyond max or while callers wait. */
  private keepWarm(): void {
    const pool = this.pool as PgPool & { options: { max: number } }
    const want = this.options.minIdle
    if (this.stopped || want === 0) return
    while (
      !pool.ending &&
      pool.idleCount + this.warming < want &&
      pool.totalCount < pool.options.max && // includes the clients being warmed: pg-pool counts them at once

      pool.waitingCount === 0
    ) {
      this.warming++
      void openIdleClient(pool).then(() => {
        this.warming--
      })
    }
  }

  /** A summary: the guard holds the pool and its clients, whose options may carry credentials. */
  [inspect.custom](): string {
    return `Guard { connections: ${this.snapshot().length}, stopped: ${this.stopped} }`
  }

  /** Stops every timer; called when the pool ends. */
  stop(): void {
    this.stopped = true
    this.monitor.stop()
    if (this.housekeepingTimer) clearInterval(this.housekeepingTimer)
    this.housekeepingTimer = undefined
  }
}

export type { PoolClient }
