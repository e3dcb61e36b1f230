/**
 * pg-boss (10+) builds its pg.Pool inside start(), again after every stop(), and its LISTEN/NOTIFY
 * connection as a `new pg.Client` of its own: no option takes a pool or a client. guardPgBoss() guards
 * the pool each time pg-boss opens one, and makes pg.Client guarded process-wide (guardAllClients) so the
 * LISTEN client is too. Typed structurally: pg-boss is not a dependency of this library.
 */
import type { Pool as PgPool } from 'pg'
import { ConfigError } from '../errors'
import type { GuardOptions } from '../options'
import { guardAllClients } from '../pool/client'
import { guard } from '../pool/pool'
import { isGuardedPool } from '../pg/pool-wrappers'

/** The part of pg-boss's default Db this reads: its pool (after open) and open(). */
interface PgBossDb {
  _pgbdb?: boolean
  opened?: boolean
  pool?: PgPool
  open(): Promise<void>
}

/**
 * Guards a PgBoss instance's pool, at every start(), and its LISTEN client. Call it after `new PgBoss()`
 * and before (or after) `start()`; returns the boss. `options` apply to the pool's guard, which is
 * `boss.getDb().pool.guard` after each start(); the LISTEN client's is `standalone`.
 */
export function guardPgBoss<B extends { getDb(): unknown }>(boss: B, options?: GuardOptions): B {
  const db = boss?.getDb?.() as PgBossDb | undefined
  if (!db || db._pgbdb !== true || typeof db.open !== 'function') {
    throw new ConfigError("guardPgBoss() needs a PgBoss that opens its own pool (with the `db` option, guard that adapter's pool instead)")
  }
  const guardPool = (): void => {
    if (!db.pool || isGuardedPool(db.pool)) return
    // As on a Pool of ours, the pool's guard is `pool.guard` (snapshot(), events): guard() only returns
    // it, and pg-boss's pool is built inside start(), where the app cannot take the return value.
    Object.defineProperty(db.pool, 'guard', { value: guard(db.pool, options), enumerable: false, configurable: true })
  }
  const open = db.open.bind(db)
  db.open = async () => {
    await open()
    guardPool()
  }
  if (db.opened) guardPool()
  guardAllClients()
  return boss
}
