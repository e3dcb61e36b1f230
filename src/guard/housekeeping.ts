/**
 * What HikariCP users expect on top of pg-pool: leak detection (a client held past a threshold is reported
 * once, with the stack that acquired it) and a kept-warm minimum of idle clients. (Lifetime jitter is a
 * pool hook, see Guard.) Its timer is unref'd and stops with the pool.
 */
import type { Pool as PgPool } from 'pg'
import { WarningCodes } from '../errors'
import type { ResolvedGuardOptions } from '../options'
import { openIdleClient } from '../pg/internals'
import type { Registry } from './registry'

export interface LeakReport {
  id: number
  host: string
  port: number
  heldMs: number
  /** Stack of the pool.connect() call that acquired the client. */
  stack: string
}

export class Housekeeping {
  private timer: NodeJS.Timeout | undefined
  private warming = 0
  private stopped = false

  constructor(
    private readonly pool: PgPool,
    private readonly registry: Registry,
    private readonly options: ResolvedGuardOptions,
    /** Delivers a leak report; returns false when nobody listens (then it becomes a process warning). */
    private readonly onLeak: (r: LeakReport) => boolean
  ) {}

  start(): void {
    const leakMs = this.options.leakDetectionThresholdMs
    if (leakMs === 0 && this.options.minIdle === 0) return
    const everyMs = leakMs > 0 ? Math.min(1000, Math.max(50, leakMs / 4)) : 1000
    this.timer = setInterval(() => {
      this.checkLeaks(Date.now())
      this.keepWarm()
    }, everyMs)
    this.timer.unref()
    this.keepWarm()
  }

  stop(): void {
    this.stopped = true
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
  }

  checkLeaks(now: number): void {
    const threshold = this.options.leakDetectionThresholdMs
    if (threshold === 0) return
    for (const rec of this.registry.records()) {
      if (rec.state !== 'in-use' || rec.leakReported || rec.lastAcquiredAt === null) continue
      const heldMs = now - rec.lastAcquiredAt
      if (heldMs < threshold) continue
      this.registry.noteLeakReported(rec)
      const report: LeakReport = {
        id: rec.id,
        host: rec.configuredHost,
        port: rec.configuredPort,
        heldMs,
        stack: rec.acquiredStack ?? '(acquired before the guard attached)',
      }
      if (!this.onLeak(report)) {
        process.emitWarning(
          `pg-pool-guard: client to ${report.host}:${report.port} held for ${heldMs} ms (leakDetectionThresholdMs ${threshold}); ${report.stack}`,
          { code: WarningCodes.LEAK_DETECTED }
        )
      }
    }
  }

  /** A client left the pool: top up soon, outside the pool's own event (never inside pg-pool's removal). */
  wake(): void {
    if (this.stopped || this.options.minIdle === 0) return
    setImmediate(() => this.keepWarm())
  }

  /** Open idle clients in the background until minIdle are idle, never beyond max or while callers wait. */
  keepWarm(): void {
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
}
