/**
 * What a guard hands its pool: the hooks the pool wrappers (pool-wrappers.ts) and the guarded Client
 * classes (client-classes.ts) call, and where a guarded Client class finds them. A leaf: both sides read it.
 */
import type { Client, PoolClient } from 'pg'

export interface PoolHooks {
  /** The config a new client is built from, for the attempt `plan` listed (undefined: no plan); identity when absent. */
  clientConfig?(config: Record<string, unknown>, attempt: unknown): Record<string, unknown>
  /** A client object was just constructed by the pool (not connected yet), for `attempt`. */
  clientCreated(client: Client, attempt: unknown): void
  /**
   * Runs after a client connected and before the pool sees it (role and fencing checks). A rejection fails
   * the connection attempt: the client is ended quietly and the planner may try the next host. Undefined:
   * nothing to check, and the connect callback runs where pg runs it (inside its ReadyForQuery handler).
   */
  afterConnect?(client: Client): Promise<void> | undefined
  /**
   * Before any attempt: an error to fail the new connection with at once (every host it could go to is
   * down), a promise of one (wait a bounded time for a host to come back first), or undefined to go ahead.
   * No client is built and no slot taken meanwhile.
   */
  admit?(): Error | Promise<Error | undefined> | undefined
  /** Connection attempts for one new client, in order; absent or one entry: pg-pool's single attempt. */
  plan?(): { target: unknown; label: string }[]
  /** Turns the failures of a multi-attempt connect into one error. */
  attemptsFailed?(failures: { label: string; error: Error }[]): Error
  /**
   * One host: after a failed attempt, how long to wait before the next one (no query was sent), or undefined
   * to fail the caller now. `elapsedMs` since the first attempt.
   */
  retryAfter?(err: Error, elapsedMs: number): number | undefined
  /** pool.connect() was called (also by pool.query); returns a tag to attach to the client it yields. */
  connectCalled?(): unknown
  /** The client pool.connect() yields, with the tag connectCalled returned. */
  clientYielded?(client: PoolClient, tag: unknown): void
  /** pool.connect() failed (a timeout, no host, ...). */
  connectFailed?(err: Error): void
  /** Lifetime in seconds for one new client, given the configured maxLifetimeSeconds. */
  lifetimeSeconds?(configured: number): number
  /**
   * pg-pool hands a client out (`isNew`: just connected; else from its idle list): false when the guard
   * evicted it instead (the checkout check; the waiter then gets the next idle client or a new connection).
   * From here the client is in use.
   */
  acquiring?(client: Client, isNew: boolean): boolean
  /** pg-pool takes a client back (before it decides to keep or remove it): from here the client is idle. */
  released?(client: Client): void
  /** A pooled client whose server identity was not read at login, back in the pool: read it now. */
  identityLater?(client: Client): void
  /** pool.end() was called. */
  ending(): void
  /** The error for callers still waiting for a client when the pool ends. */
  endedError?(): Error
}

/**
 * Where a guarded Client class finds its pool's hooks (set once the guard is built, after pg-pool's
 * constructor), and the attempt the next client is for: pg-pool builds the client synchronously inside
 * newClient, from the same options every time, so the attempt travels beside them.
 */
export class HookBinding {
  hooks: PoolHooks | undefined
  nextAttempt: unknown
}
