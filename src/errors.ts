/**
 * Every error and warning this library produces carries a stable `code`. Match on `code`, never on the
 * message text: messages name host:port and the evidence, and may gain detail between versions.
 * Errors (thrown, or passed to a callback) and warnings (process warnings) have separate code lists.
 */
import type { VerdictKind } from './verdict-kinds'

export const ErrorCodes = {
  /** An option failed validation at construction. */
  CONFIG_INVALID: 'PGG_CONFIG_INVALID',
  /** The guard destroyed the socket under a query: the kernel or a probe showed the peer is gone. */
  CONNECTION_EVICTED: 'PGG_CONNECTION_EVICTED',
  /** Every configured host was tried and none could serve the requested session attributes. */
  NO_HOST_AVAILABLE: 'PGG_NO_HOST_AVAILABLE',
  /** A new connection was refused because its host is fenced (split-brain: a stale writable primary). */
  HOST_FENCED: 'PGG_HOST_FENCED',
  /** The server a connection reached does not satisfy targetSessionAttrs. */
  WRONG_ROLE: 'PGG_WRONG_ROLE',
  /** A new connection was refused at once: every host it could go to is down (judged dead, or unreachable). */
  HOST_DOWN: 'PGG_HOST_DOWN',
  /** The pool ended while this caller was waiting for a client (pg-pool would leave it waiting for ever). */
  POOL_ENDED: 'PGG_POOL_ENDED',
  /** guard() was given a pool that already has a guard. */
  ALREADY_GUARDED: 'PGG_ALREADY_GUARDED',
} as const

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes]

export const WarningCodes = {
  /** the FFI (koffi) did not load; TCP_USER_TIMEOUT is not set, nor keepalive count/interval on Node before the 4-argument setKeepAlive. */
  FFI_UNAVAILABLE: 'PGG_FFI_UNAVAILABLE',
  /** a setsockopt call failed on a pooled socket. */
  SOCKET_OPTION_FAILED: 'PGG_SOCKET_OPTION_FAILED',
  /** a client was held longer than leakDetectionThresholdMs. */
  LEAK_DETECTED: 'PGG_LEAK_DETECTED',
  /** an idle client failed and the pool had no 'error' listener (pg.Pool would have crashed). */
  IDLE_CLIENT_ERROR: 'PGG_IDLE_CLIENT_ERROR',
  /** a checked-out client emitted 'error' with no listener (pg would have thrown it). */
  CLIENT_ERROR: 'PGG_CLIENT_ERROR',
  /** @opentelemetry/instrumentation-pg reports pool metrics beside ours (see the README's Metrics section). */
  METRICS_INSTRUMENTATION_PG: 'PGG_METRICS_INSTRUMENTATION_PG',
  /**
   * a pool's Client class is not one the guard can see into (pg-native, a test double): the pool works as
   * pg.Pool does, but its clients are not hardened, tracked or judged.
   */
  CLIENT_UNGUARDED: 'PGG_CLIENT_UNGUARDED',
  /** guardClient() got options for clients to a database whose standalone guard already has others: the first ones stay. */
  STANDALONE_OPTIONS_IGNORED: 'PGG_STANDALONE_OPTIONS_IGNORED',
} as const

export type WarningCode = (typeof WarningCodes)[keyof typeof WarningCodes]

/**
 * What became of the query an error failed (README, "Every write's fate"): it never left the client; it
 * was inside a transaction block that can never commit (retrying the whole transaction is safe); or it may
 * have been applied (a COMMIT, or an autocommit statement, sent and not answered).
 */
export type QueryOutcome = 'not-sent' | 'rolled-back' | 'unknown'

/** What the server that holds the answer said of an in-doubt write (resolveOutcome()); 'unknown' where it could not say. */
export type ResolvedOutcome = 'committed' | 'rolled-back' | 'unknown'

/** Base class of every error this library throws or passes to a callback. */
export class PoolGuardError<C extends string = ErrorCode> extends Error {
  readonly code: C
  /**
   * On the errors a query can get from this library (every code but PGG_CONFIG_INVALID and
   * PGG_ALREADY_GUARDED): what became of that query. Errors raised before a connection was handed out are
   * 'not-sent'.
   */
  outcome?: QueryOutcome
  constructor(code: C, message: string, options?: { cause?: unknown; outcome?: QueryOutcome }) {
    super(`pg-pool-guard: ${message}`, options)
    this.name = new.target.name
    this.code = code
    if (options?.outcome) this.outcome = options.outcome
  }
}

export class ConfigError extends PoolGuardError {
  constructor(message: string) {
    super(ErrorCodes.CONFIG_INVALID, message)
  }
}

/** Thrown into the query that was running on a socket the guard destroyed (and into the queries queued behind it). */
export class ConnectionEvictedError extends PoolGuardError {
  declare outcome: QueryOutcome
  /**
   * With the guard option resolveInDoubt, on an 'unknown' outcome: asks the server that holds the answer
   * (the same server once it answers again, or the promoted one after a failover) whether the write
   * committed. Never 'committed' or 'rolled-back' unless the server said so; 'unknown' at the deadline.
   */
  resolveOutcome?: (options?: { timeoutMs?: number }) => Promise<ResolvedOutcome>
  constructor(
    readonly reason: VerdictKind,
    readonly host: string,
    readonly port: number,
    readonly evidence: string,
    outcome: QueryOutcome = 'not-sent'
  ) {
    super(ErrorCodes.CONNECTION_EVICTED, `connection to ${host}:${port} evicted (${reason}): ${evidence}`, { outcome })
  }

  /** The same error for one query, with that query's outcome (and its resolver, for an 'unknown' one). */
  withOutcome(outcome: QueryOutcome, resolveOutcome?: ConnectionEvictedError['resolveOutcome']): ConnectionEvictedError {
    const e = new ConnectionEvictedError(this.reason, this.host, this.port, this.evidence, outcome)
    if (resolveOutcome) e.resolveOutcome = resolveOutcome
    return e
  }
}

/** One attempt made while choosing a host, as reported in NoHostAvailableError. */
export interface HostAttempt {
  host: string
  port: number
  /** Why the host was not used: an error message or a role mismatch. */
  rejected: string
  /** The code of the error that rejected it (PGG_WRONG_ROLE, PGG_CONNECTION_EVICTED, ECONNREFUSED, 28P01, ...), if it had one. */
  code: string | undefined
}

export class NoHostAvailableError extends PoolGuardError {
  constructor(
    readonly targetSessionAttrs: string,
    readonly attempts: HostAttempt[],
    cause?: unknown
  ) {
    const tried = attempts.map((a) => `${a.host}:${a.port} (${a.rejected})`).join('; ')
    super(ErrorCodes.NO_HOST_AVAILABLE, `no host satisfies target_session_attrs=${targetSessionAttrs}; tried ${tried}`, { cause, outcome: 'not-sent' })
  }
}

export class HostFencedError extends PoolGuardError {
  constructor(
    readonly host: string,
    readonly port: number,
    readonly why: string
  ) {
    super(ErrorCodes.HOST_FENCED, `${host}:${port} is fenced: ${why}`, { outcome: 'not-sent' })
  }
}

/** A connect to a host the guard has judged down fails at once, instead of queueing behind the kernel's SYN backoff. */
export class HostDownError extends PoolGuardError {
  constructor(
    readonly host: string,
    readonly port: number,
    readonly why: string
  ) {
    super(ErrorCodes.HOST_DOWN, `${host}:${port} is down (${why}); new connections fail at once until it answers again`, { outcome: 'not-sent' })
  }
}

export class WrongRoleError extends PoolGuardError {
  constructor(
    readonly host: string,
    readonly port: number,
    readonly wanted: string,
    readonly found: string
  ) {
    super(ErrorCodes.WRONG_ROLE, `${host}:${port} is ${found}, wanted ${wanted}`, { outcome: 'not-sent' })
  }
}

/** Emits a process warning once per code (or per code+key), so a misconfigured fleet does not flood logs. */
const warned = new Set<string>()
export function warnOnce(code: WarningCode, message: string, key = ''): void {
  const k = `${code}:${key}`
  if (warned.has(k)) return
  warned.add(k)
  process.emitWarning(`pg-pool-guard: ${message}`, { code })
}
