/**
 * The drop-in pool: pg.Pool itself (same constructor, methods, events, counters), plus `pool.guard`.
 * pg-pool is given the guarded Client class through its own `options.Client`, and the methods the guard
 * wraps are overridden here (pg/pool-wrappers.ts says which and why); `guard(existingPool)` attaches the
 * same hooks to a pool it did not build.
 */
import pg from 'pg'
import { ConfigError } from '../errors'
import { Guard } from '../guard/guard'
import { unguardedWarning } from '../guard/lifecycle'
import type { GuardOptions } from '../options'
import { resolveGuardOptions } from '../options'
import { parseHosts } from '../topology/hosts'
import { type AcquireClient, type ClientClass, type PendingItem } from '../pg/internals'
import { guardedClientClass } from '../pg/client-classes'
import { HookBinding, type PoolHooks } from '../pg/hooks'
import { type Release, wrap } from '../pg/pool-wrappers'

export interface PoolConfig extends Omit<pg.PoolConfig, 'host' | 'port'> {
  /** One host, a comma-separated list ('a,b') or an array, tried in order as libpq does. */
  host?: string | string[]
  /** One port for every host, or one per host ('5432,5433' or an array). */
  port?: number | string | number[]
  /** Everything pg-pool-guard adds; all optional. */
  guard?: GuardOptions
}

/** pg-pool's methods the overrides below call through to (not in @types/pg). */
interface PgPoolMethods {
  newClient(item: PendingItem): void
  _afterConnect(...args: unknown[]): unknown
  _acquireClient(...args: Parameters<AcquireClient>): unknown
  _release(...args: Parameters<Release>): unknown
}

const base = pg.Pool.prototype as unknown as PgPoolMethods & pg.Pool
/** pg.Pool itself, typed with the methods overridden below (so they call pg-pool's through `super`). */
const PgPool = pg.Pool as unknown as new (config?: pg.PoolConfig) => pg.Pool & PgPoolMethods

export class Pool extends PgPool {
  readonly guard: Guard
  readonly #binding: HookBinding
  /** The guard's hand-out and take-back hooks, read once: the two overrides below run on every checkout. */
  readonly #acquiring: NonNullable<PoolHooks['acquiring']> | undefined
  readonly #released: NonNullable<PoolHooks['released']> | undefined

  constructor(config?: PoolConfig) {
    const { guard: guardOptions, rest } = splitConfig(config)
    // Throw on bad options and host lists before pg-pool sets anything up.
    resolveGuardOptions(guardOptions)
    parseHosts((rest ?? {}) as Parameters<typeof parseHosts>[0])
    const binding = new HookBinding()
    const Client = ((rest as { Client?: ClientClass } | undefined)?.Client ?? pg.Client) as ClientClass
    super(Object.assign(rest ?? {}, { Client: guardedClientClass(Client, binding, unguardedWarning(Client)) }) as pg.PoolConfig)
    this.#binding = binding
    hideCredentials(this.options, ['connectionString', 'Client'])
    this.guard = new Guard(this, guardOptions, { binding })
    this.#acquiring = binding.hooks?.acquiring
    this.#released = binding.hooks?.released
  }

  override newClient(item: PendingItem): void {
    wrap.newClient(this, this.#binding, (i) => base.newClient.call(this, i), item)
  }

  override end(...args: unknown[]): Promise<void> {
    return wrap.end(this, this.#binding.hooks!, (...a) => (base.end as (...x: unknown[]) => unknown).apply(this, a), args) as Promise<void>
  }

  override _afterConnect(...args: unknown[]): unknown {
    return wrap.afterConnect(this, this.#binding.hooks!, (...a) => base._afterConnect.apply(this, a), args)
  }

  // The two overrides on every checkout: the guard's hook, then pg-pool's own method (wrap.acquireClient
  // and wrap.release, written out: no closure or bound function between them on the hot path).
  override _acquireClient(client: pg.Client, item: PendingItem, idleListener: unknown, isNew: boolean): unknown {
    const acquiring = this.#acquiring
    if (acquiring === undefined || acquiring(client, isNew)) return super._acquireClient(client, item, idleListener, isNew)
    return wrap.handOutRefused(this, item)
  }

  override _release(client: pg.Client, idleListener: unknown, err: unknown): unknown {
    const released = this.#released
    if (released !== undefined) released(client)
    return super._release(client, idleListener, err)
  }
}

/**
 * Attach the guard to a pg.Pool that something else created (an ORM, a framework). Clients the pool already
 * holds are hardened and tracked at once; new ones from their first packet.
 */
export function guard(pool: pg.Pool, options?: GuardOptions): Guard {
  const p = pool as unknown as { connect?: unknown; options?: unknown } | null | undefined
  if (typeof p !== 'object' || p === null || typeof p.connect !== 'function' || typeof p.options !== 'object' || p.options === null) {
    throw new ConfigError('guard() needs a pg.Pool instance')
  }
  // Validate before the Guard claims the pool: a rejected call must leave it unguarded, so a corrected
  // retry is not refused as PGG_ALREADY_GUARDED.
  resolveGuardOptions(options)
  parseHosts(p.options as Parameters<typeof parseHosts>[0])
  const g = new Guard(pool, options)
  hideCredentials((pool as unknown as { options: object }).options, ['connectionString'])
  return g
}

/**
 * pg-pool makes options.password non-enumerable so that logging the pool does not print it; a connection
 * string carries the same password, so it gets the same treatment (reading it still works). So does the
 * guarded Client class, which is ours, not the user's.
 */
function hideCredentials(options: object, keys: string[]): void {
  for (const key of keys) {
    if (Object.prototype.hasOwnProperty.call(options, key)) Object.defineProperty(options, key, { enumerable: false })
  }
}

/** Copy the config without `guard`, keeping property descriptors (a non-enumerable password stays hidden). */
function splitConfig(config: PoolConfig | undefined): { guard: GuardOptions | undefined; rest: object | undefined } {
  if (config == null) return { guard: undefined, rest: config }
  if (typeof config !== 'object' || Array.isArray(config)) {
    throw new ConfigError(`the pool config must be an object, got ${Array.isArray(config) ? 'an array' : typeof config}`)
  }
  const descriptors = Object.getOwnPropertyDescriptors(config)
  const guardOptions = config.guard
  delete (descriptors as Record<string, unknown>).guard
  return { guard: guardOptions, rest: Object.defineProperties({}, descriptors) }
}
