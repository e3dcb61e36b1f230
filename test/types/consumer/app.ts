// A strict ESM consumer of the published types: the one-line swap, guard() on an existing pool, the
// error classes, the default import, and the test kit.
import pg from 'pg'
import pgg, { ErrorCodes, GUARD_DEFAULTS, Guard, Pool, PoolGuardError, guard } from 'pg-pool-guard'
import type { EvictionEvent, GuardOptions, PoolConfig } from 'pg-pool-guard'
import { faultProxy, startCluster } from 'pg-pool-guard/testing'

const options: GuardOptions = { stallMs: 1000, checkIntervalMs: 250, targetSessionAttrs: 'read-write', meterProvider: null }
const config: PoolConfig = { connectionString: 'postgres://localhost/app', max: 4, host: ['a', 'b'], guard: options }
const pool = new Pool(config)
const attached: Guard = guard(new pg.Pool({ max: 2 }), { stallMs: 500 })
const samePool: typeof Pool = pgg.Pool
const asPgPool: pg.Pool = pool

export async function main(): Promise<number> {
  pool.guard.on('evict', (e: EvictionEvent) => void e)
  pool.on('error', (err: Error) => void err)
  const result = await pool.query<{ two: number }>('SELECT 2 AS two')
  const client: pg.PoolClient = await pool.connect()
  client.release()
  try {
    await pool.end()
  } catch (err) {
    if (err instanceof PoolGuardError && err.code === ErrorCodes.CONFIG_INVALID) return 0
  }
  void [attached, samePool, asPgPool, faultProxy, startCluster]
  return (result.rows[0]?.two ?? 0) + pool.totalCount + pool.idleCount + pool.waitingCount + GUARD_DEFAULTS.stallMs
}
