/**
 * A write workload for failover tests: N writers inserting rows through a pool, every acknowledgement
 * recorded with the server address that gave it (inet_server_addr()) and the instant it arrived. It answers
 * the questions a failover test asks: when did the first write land on the new primary, how many writes
 * did the old primary acknowledge after a given instant, how many failed and how.
 *
 * Writes are never retried by the workload itself beyond moving on to the next row: a failed INSERT is
 * counted as failed, as an application would see it.
 */
import { EventEmitter } from 'node:events'
import type pg from 'pg'
import { KitError, KitErrorCodes } from './errors'

export interface Ack {
  writer: number
  seq: number
  /** Server address that acknowledged (inet_server_addr()). */
  host: string
  at: number
  ms: number
}

export interface WriteFailure {
  writer: number
  seq: number
  at: number
  ms: number
  code: string
  message: string
}

export interface WorkloadOptions {
  /** @default 8 */
  writers?: number
  /** Created if missing (on the pool's current primary). @default 'pgg_writes' */
  table?: string
  /** Pause between a writer's writes, ms. @default 0 */
  pauseMs?: number
}

export interface WorkloadSummary {
  acks: number
  failures: number
  byHost: Record<string, number>
  /** Longest single write, ms. */
  slowestMs: number
  failureCodes: Record<string, number>
}

export class WriteWorkload extends EventEmitter<{ ack: [Ack]; failure: [WriteFailure] }> {
  readonly acks: Ack[] = []
  readonly failures: WriteFailure[] = []
  private stopping = false
  private running: Promise<void>[] = []
  /** writer -> when its current write started. */
  private readonly current = new Map<number, number>()

  constructor(
    private readonly pool: pg.Pool,
    private readonly options: WorkloadOptions = {}
  ) {
    super()
  }

  get table(): string {
    return this.options.table ?? 'pgg_writes'
  }

  /** Creates the table (on whatever the pool reaches) and starts the writers. */
  async start(): Promise<this> {
    await this.pool.query(`CREATE TABLE IF NOT EXISTS ${this.table} (writer int NOT NULL, seq int NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp(), PRIMARY KEY (writer, seq))`)
    const writers = this.options.writers ?? 8
    this.running = Array.from({ length: writers }, (_, w) => this.writer(w))
    return this
  }

  /** Stops the writers after their current write and summarizes. */
  async stop(): Promise<WorkloadSummary> {
    this.stopping = true
    await Promise.all(this.running)
    return this.summary()
  }

  summary(): WorkloadSummary {
    const byHost: Record<string, number> = {}
    for (const a of this.acks) byHost[a.host] = (byHost[a.host] ?? 0) + 1
    const failureCodes: Record<string, number> = {}
    for (const f of this.failures) failureCodes[f.code] = (failureCodes[f.code] ?? 0) + 1
    let slowestMs = 0 // a loop, not Math.max(...spread): a long run holds more acks than the stack allows arguments
    for (const x of [...this.acks, ...this.failures]) if (x.ms > slowestMs) slowestMs = x.ms
    return { acks: this.acks.length, failures: this.failures.length, byHost, slowestMs, failureCodes }
  }

  /** Writes in flight for longer than `olderThanMs` right now: writers stuck on a dead socket. */
  hung(olderThanMs: number, now = Date.now()): number {
    let n = 0
    for (const started of this.current.values()) if (now - started > olderThanMs) n++
    return n
  }

  /** Writes acknowledged by `host` (an address as inet_server_addr() prints it) at or after `since`. */
  ackedBy(host: string, since = 0): Ack[] {
    return this.acks.filter((a) => a.host === host && a.at >= since)
  }

  /**
   * Writes *sent* at or after `since` that `host` acknowledged. This is the sound question after a
   * fencing decision: a write sent just before it may still be acknowledged just after it.
   */
  sentAndAckedBy(host: string, since: number): Ack[] {
    return this.acks.filter((a) => a.host === host && a.at - a.ms >= since)
  }

  /** Resolves with the first acknowledgement from `host` at or after `since` (already seen, or the next one). */
  firstAckOn(host: string, since = 0, timeoutMs = 30_000): Promise<Ack> {
    const seen = this.acks.find((a) => a.host === host && a.at >= since)
    if (seen) return Promise.resolve(seen)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('ack', onAck)
        reject(new KitError(KitErrorCodes.ACK_TIMEOUT, `no write acknowledged by ${host} within ${timeoutMs} ms (${this.acks.length} acks, ${this.failures.length} failures so far)`))
      }, timeoutMs)
      const onAck = (a: Ack): void => {
        if (a.host !== host || a.at < since) return
        clearTimeout(timer)
        this.off('ack', onAck)
        resolve(a)
      }
      this.on('ack', onAck)
    })
  }

  private async writer(w: number): Promise<void> {
    for (let seq = 0; !this.stopping; seq++) {
      const started = Date.now()
      this.current.set(w, started)
      try {
        const { rows } = await this.pool.query(`INSERT INTO ${this.table} (writer, seq) VALUES ($1, $2) RETURNING host(inet_server_addr()) AS host`, [w, seq])
        const ack = { writer: w, seq, host: rows[0].host as string, at: Date.now(), ms: Date.now() - started }
        this.acks.push(ack)
        this.emit('ack', ack)
      } catch (err) {
        const e = err as Error & { code?: string }
        const failure = { writer: w, seq, at: Date.now(), ms: Date.now() - started, code: e.code ?? 'UNKNOWN', message: e.message }
        this.failures.push(failure)
        this.emit('failure', failure)
      } finally {
        this.current.delete(w)
      }
      if (this.options.pauseMs) await new Promise((r) => setTimeout(r, this.options.pauseMs))
    }
  }
}

/** Starts a write workload on `pool`. */
export function writeLoad(pool: pg.Pool, options?: WorkloadOptions): Promise<WriteWorkload> {
  return new WriteWorkload(pool, options).start()
}
