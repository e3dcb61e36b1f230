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
import { HookBinding, type Release, wrap } from '../pg/pool-wrappers'

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
  _acquireClient: AcquireClient
  _release: Release
}

const base = pg.Pool.prototype as unknown as PgPoolMethods & pg.Pool

export class Pool extends pg.Pool {
  readonly guard: Guard
  readonly #binding: HookBinding
  readonly #acquireClient: AcquireClient
  readonly #release: Release

  constructor(config?: PoolConfig) {
    const { guard: guardOptions, rest } = splitConfig(config)
    // Throw on bad options and host lists before pg-pool sets anything up.
    resolveGuardOptions(guardOptions)
    parseHosts((rest ?? {}) as Parameters<typeof parseHosts>[0])
    const binding = new HookBinding()
    const Client = ((rest as { Client?: ClientClass } | undefined)?.Client ?? pg.Client) as ClientClass
    super(Object.assign(rest ?? {}, { Client: guardedClientClass(Client, binding, unguardedWarning(Client)) }) as pg.PoolConfig)
    this.#binding = binding
    // pg-pool's own methods, bound once: the overrides below run on every checkout.
    this.#acquireClient = base._acquireClient.bind(this)
    this.#release = base._release.bind(this)
    hideCredentials(this.options, ['connectionString', 'Client'])
    this.guard = new Guard(this, guardOptions, { binding })
  }

  newClient(item: PendingItem): void {
    wrap.newClient(this, this.#binding, (i) => base.newClient.call(this, i), item)
  }

  override end(...args: unknown[]): Promise<void> {
    return wrap.end(this, this.#binding.hooks!, (...a) => (base.end as (...x: unknown[]) => unknown).apply(this, a), args) as Promise<void>
  }

  _afterConnect(...args: unknown[]): unknown {
    return wrap.afterConnect(this, this.#binding.hooks!, (...a) => base._afterConnect.apply(this, a), args)
  }

  _acquireClient(client: pg.Client, item: PendingItem, idleListener: unknown, isNew: boolean): unknown {
    return wrap.acquireClient(this, this.#binding.hooks!, this.#acquireClient, client, item, idleListener, isNew)
  }

  _release(client: pg.Client, idleListener: unknown, err: unknown): unknown {
    return wrap.release(this.#binding.hooks!, this.#release, client, idleListener, err)
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
