/**
 * The guard attached to one pg pool: it follows the pool's events into the registry, hardens each socket
 * as it connects, and runs the housekeeping HikariCP users expect (leak detection, lifetime jitter,
 * kept-warm idle clients). All its timers are unref'd and stop when the pool ends.
 */
import { EventEmitter } from 'node:events'
import { inspect } from 'node:util'
import type { Client, Pool as PgPool, PoolClient } from 'pg'
import { ErrorCodes, warnOnce } from '../errors'
import { type GuardOptions, type ResolvedGuardOptions, resolveGuardOptions } from '../options'
import {
  backendPidOf,
  clientsOf,
  fdOf,
  installPoolHooks,
  isIdleInPool,
  onSocketConnected,
  openIdleClient,
  rawSocketOf,
} from '../pool/pg-adapter'
import { hardenSocket } from '../socket/harden'
import { type ConnRecord, type ConnSnapshot, Registry, recordSocket } from './registry'

export interface LeakReport {
  id: number
  host: string
  port: number
  heldMs: number
  /** Stack of the pool.connect() call that acquired the client. */
  stack: string
}

export interface GuardEvents {
  leak: [LeakReport]
}

export class Guard extends EventEmitter<GuardEvents> {
  readonly options: ResolvedGuardOptions
  readonly registry = new Registry()
  private readonly pool: PgPool
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
    this.listen()
    // A pool that another library created may already hold clients.
    for (const client of clientsOf(pool)) {
      const rec = this.track(client)
      this.socketConnected(rec)
      rec.backendPid = backendPidOf(client)
      this.registry.setState(rec, isIdleInPool(pool, client) ? 'idle' : 'in-use')
    }
    this.startHousekeeping()
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
      if (!rec) return
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
    if (this.housekeepingTimer) clearInterval(this.housekeepingTimer)
    this.housekeepingTimer = undefined
  }
}

export type { PoolClient }
