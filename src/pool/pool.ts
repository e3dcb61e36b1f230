/**
 * The drop-in pool: pg.Pool itself (same constructor, methods, events, counters), plus `pool.guard`.
 * Everything guard-specific is attached by `new Guard(pool)`, the same path `guard(existingPool)` takes.
 */
import pg from 'pg'
import { Guard } from '../guard/guard'
import type { GuardOptions } from '../options'
import { resolveGuardOptions } from '../options'

export interface PoolConfig extends Omit<pg.PoolConfig, 'host' | 'port'> {
  /** One host, a comma-separated list ('a,b') or an array, tried in order as libpq does. */
  host?: string | string[]
  /** One port for every host, or one per host ('5432,5433' or an array). */
  port?: number | string | number[]
  /** Everything pg-pool-guard adds; all optional. */
  guard?: GuardOptions
}

export class Pool extends pg.Pool {
  readonly guard: Guard

  constructor(config?: PoolConfig) {
    const { guard: guardOptions, rest } = splitConfig(config)
    resolveGuardOptions(guardOptions) // throw on bad options before pg-pool sets anything up
    super(rest as pg.PoolConfig)
    hideCredentials(this.options)
    this.guard = new Guard(this, guardOptions)
  }
}

/**
 * Attach the guard to a pg.Pool that something else created (an ORM, a framework). Clients the pool already
 * holds are hardened and tracked at once; new ones from their first packet.
 */
export function guard(pool: pg.Pool, options?: GuardOptions): Guard {
  if (!(pool instanceof pg.Pool) && typeof (pool as { connect?: unknown })?.connect !== 'function') {
    throw new TypeError('pg-pool-guard: guard() needs a pg.Pool instance')
  }
  return new Guard(pool, options)
}

/**
 * pg-pool makes options.password non-enumerable so that logging the pool does not print it; a connection
 * string carries the same password, so it gets the same treatment (reading it still works).
 */
function hideCredentials(options: object): void {
  if (Object.prototype.hasOwnProperty.call(options, 'connectionString')) {
    Object.defineProperty(options, 'connectionString', { enumerable: false })
  }
}

/** Copy the config without `guard`, keeping property descriptors (a non-enumerable password stays hidden). */
function splitConfig(config: PoolConfig | undefined): { guard: GuardOptions | undefined; rest: object | undefined } {
  if (config == null) return { guard: undefined, rest: config }
  const descriptors = Object.getOwnPropertyDescriptors(config)
  const guardOptions = config.guard
  delete (descriptors as Record<string, unknown>).guard
  return { guard: guardOptions, rest: Object.defineProperties({}, descriptors) }
}
