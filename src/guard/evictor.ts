/**
 * The one evictor: the only code that retires or destroys a client, whatever condemned it — kernel and
 * probe verdicts, topology verdicts, FATAL errors, lifecycle deadlines. What it does is read from the
 * verdict table (judge/verdicts.ts) for the connection's phase; every eviction emits one 'evict' event and
 * counts in pg_pool_guard.evictions (a retired client counts when it actually leaves the pool).
 */
import type { Client } from 'pg'
import { ConnectionEvictedError, type QueryOutcome } from '../errors'
import { type Action, actionFor, type ConnectionPhase, type Verdict } from '../judge/verdicts'
import { outcomesOf, type TxStatus } from '../judge/outcome-rules'
import { normalizeAddress } from '../kernel/proc-net-tcp'
import type { ConnRecord, Registry, VerdictRecord } from './registry'

/** What the guard did to one connection, and why. */
export interface EvictionEvent {
  id: number
  reason: Verdict['kind']
  /** The host and port the client was configured for. */
  host: string
  port: number
  /** The endpoint the socket was connected to ("ip:port"). */
  endpoint: string
  backendPid: number | null
  evidence: string
  /** true: the client was in use — its socket destroyed, or retired on release (see the verdict table). */
  inUse: boolean
  firstEvidenceAt: number
  at: number
}

/** The ways to act on a pg client (pg/internals.ts and pg/in-flight.ts in the guard; recorded calls in unit tests). */
export interface EvictionActions {
  /** For clients their owner holds (standalone): idle while no query is in flight. A pool's clients go by their state. */
  isIdle?(client: Client): boolean
  /** A session the check after login refused: ended quietly (its connect already fails with the check's error). */
  refuse(client: Client): void
  /** `err`: what the client's owner hears, where it is not a pool (standalone clients). */
  removeIdle(client: Client, err: ConnectionEvictedError): void
  /** `perQuery`: the error each query in flight or queued gets (queriesOf's order), for what became of it; `reset` as in the Evictor's extras. */
  destroy(client: Client, err: ConnectionEvictedError, perQuery?: readonly Error[], reset?: (fd: number) => void): void
  /** What is on the client now (pg/in-flight.ts queriesOf); absent: nothing to tell per query. */
  queriesOf?(client: Client): { status: TxStatus; sent: (string | null)[]; queued: number }
  retire(client: Client, err: ConnectionEvictedError): void
  failConnect(client: Client, err: Error): void
}

export interface EvictorMetrics {
  verdict(kind: string): void
  evicted(reason: string, inUse: boolean, detectionMs: number | null): void
  queryOutcome?(outcome: QueryOutcome): void
}

/**
 * With resolveInDoubt: for a query of `rec` whose outcome is `outcome` (its text, as sent), what to attach to
 * its error — a resolver for an 'unknown' one — and the follow-up (an orphaned transaction block ended once
 * its server answers). Read at the eviction, before the socket goes: the transaction id is the client's.
 */
export type InDoubtHook = (rec: ConnRecord, outcome: QueryOutcome, text: string | null) => ConnectionEvictedError['resolveOutcome'] | undefined

export class Evictor {
  constructor(
    private readonly registry: Registry,
    private readonly actions: EvictionActions,
    private readonly topologyEvictInUse: 'destroy' | 'release',
    private readonly metrics: EvictorMetrics,
    private readonly emit: (e: EvictionEvent) => void,
    private readonly extras: {
      inDoubt?: InDoubtHook
      /** Called with a destroyed socket's fd before it closes (SO_LINGER 0: an RST, no late delivery). */
      reset?: (fd: number) => void
    } = {}
  ) {}

  /**
   * Acts on one verdict; returns what it did ('none' also for a connection already condemned). `login`: the
   * verdict is the check after login's (connect.ts): the session is refused, ended quietly, and its connect
   * fails with the check's own error.
   */
  evict(rec: ConnRecord, v: Omit<Verdict, 'id'>, now: number, login = false): Action {
    if (rec.verdict !== null || rec.state === 'evicting' || rec.state === 'retiring' || rec.state === 'ended') return 'none'
    const phase: ConnectionPhase = login ? 'login' : rec.state === 'connecting' ? 'connecting' : rec.state === 'idle' || this.actions.isIdle?.(rec.client) ? 'idle' : 'in-use'
    const action = actionFor(v.kind, phase, this.topologyEvictInUse === 'destroy' ? 'destroy' : 'retire', v.serverError)
    const inUse = phase === 'in-use'
    const verdict: VerdictRecord = { kind: v.kind, evidence: v.evidence, at: now, firstEvidenceAt: v.firstEvidenceAt, inUse }
    this.registry.noteVerdict(rec, verdict)
    this.metrics.verdict(v.kind)
    const error = (): ConnectionEvictedError => new ConnectionEvictedError(v.kind, rec.configuredHost, rec.configuredPort, v.evidence)
    switch (action) {
      case 'remove':
        this.gone(rec, verdict, now)
        this.actions.removeIdle(rec.client, error())
        break
      case 'destroy': {
        this.gone(rec, verdict, now)
        const base = error()
        // What became of each query on it: from the status of its last ReadyForQuery and what is in flight.
        const q = this.actions.queriesOf?.(rec.client)
        const texts = q ? [...q.sent, ...new Array<null>(q.queued).fill(null)] : []
        const perQuery = q
          ? outcomesOf(q.status, q.sent, q.queued).map((outcome, i) => {
              this.metrics.queryOutcome?.(outcome)
              return base.withOutcome(outcome, this.extras.inDoubt?.(rec, outcome, texts[i]))
            })
          : undefined
        this.actions.destroy(rec.client, base, perQuery, this.extras.reset)
        break
      }
      case 'fail':
        this.gone(rec, verdict, now)
        this.actions.failConnect(rec.client, error())
        break
      case 'refuse':
        this.gone(rec, verdict, now)
        this.actions.refuse(rec.client)
        break
      case 'retire':
        this.registry.transition(rec, 'retiring', now) // counted when it leaves (left())
        this.actions.retire(rec.client, error())
        break
      case 'none':
        this.registry.transition(rec, 'retiring', now) // pg and pg-pool remove it themselves
        break
    }
    this.emit({
      id: rec.id, reason: v.kind, host: rec.configuredHost, port: rec.configuredPort, endpoint: endpointOf(rec),
      backendPid: rec.backendPid, evidence: v.evidence, inUse, firstEvidenceAt: v.firstEvidenceAt, at: now,
    })
    return action
  }

  /** A client left the pool: if it had been condemned to leave by itself (retiring), count it now. */
  left(rec: ConnRecord, now: number): void {
    if (rec.state !== 'retiring' || !rec.verdict) return
    this.metrics.evicted(rec.verdict.kind, rec.verdict.inUse, now - rec.verdict.firstEvidenceAt)
  }

  private gone(rec: ConnRecord, v: VerdictRecord, now: number): void {
    this.registry.transition(rec, 'evicting', now)
    this.metrics.evicted(v.kind, v.inUse, now - v.firstEvidenceAt)
  }
}

/** The endpoint a record's socket goes to, "ip:port" (IPv4-mapped normalized), or its configured host:port. */
export function endpointOf(rec: ConnRecord): string {
  return rec.remoteAddress !== null && rec.remotePort !== null
    ? `${normalizeAddress(rec.remoteAddress)}:${rec.remotePort}`
    : rec.hostKey
}
