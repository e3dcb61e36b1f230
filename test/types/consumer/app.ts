// A strict ESM consumer of the published types: the one-line swap, guard() on an existing pool, the
// error classes, the default import, and the test kit.
import pg from 'pg'
import pgg, { Client, ErrorCodes, GUARD_DEFAULTS, Guard, Pool, PoolGuardError, guard, guardClient, standalone, types } from 'pg-pool-guard'
import type { ClientConfig, EvictionEvent, GuardOptions, PoolConfig, QueryResult } from 'pg-pool-guard'
import { faultProxy, startCluster } from 'pg-pool-guard/testing'

const options: GuardOptions = { stallMs: 1000, checkIntervalMs: 250, targetSessionAttrs: 'read-write', meterProvider: null }
const config: PoolConfig = { connectionString: 'postgres://localhost/app', max: 4, host: ['a', 'b'], guard: options }
const pool = new Pool(config)
const attached: Guard = guard(new pg.Pool({ max: 2 }), { stallMs: 500 })
const samePool: typeof Pool = pgg.Pool
const asPgPool: pg.Pool = pool
// The whole pg module: a guarded Client (standalone), pg's types and helpers under the same names.
const clientConfig: ClientConfig = { host: 'db', guard: { probeAfterMs: 500 } }
const standaloneClient: Client = new Client(clientConfig)
const asPgClient: pg.Client = guardClient(new pg.Client(), { stallMs: 800 })
const defaultClient: pg.Client = new pgg.Client('postgres://localhost/app')
types.setTypeParser(20, (v: string) => BigInt(v))
const rows: number = standalone.snapshot().length

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
  const one: QueryResult<{ n: number }> = await standaloneClient.query<{ n: number }>('SELECT 1 AS n')
  void [attached, samePool, asPgPool, asPgClient, defaultClient, rows, one, pgg.escapeIdentifier('x'), faultProxy, startCluster]
  return (result.rows[0]?.two ?? 0) + pool.totalCount + pool.idleCount + pool.waitingCount + GUARD_DEFAULTS.stallMs
}
