/**
 * knex's default pool (tarn) of pg.Clients it builds itself with `new this.driver.Client(...)`, where the
 * driver is what the dialect's `_driver()` returns (`require('pg')`; knex has no config option for it).
 * Two ways to make those clients standalone guarded ones, each through the whole suite on a server of its own:
 *   - a dialect subclass whose `_driver()` returns pg-pool-guard (nothing process-wide changes);
 *   - `guardAllClients()` before `knex({ client: 'pg', connection })` (any knex version, no other change).
 * examples/knex-default-pool.
 */
import { after } from 'node:test'
import knex, { type Knex } from 'knex'
import * as pgg from '../../src/index'
import { standaloneSuite, type OpenStandaloneLibrary } from './standalone-suite'

// knex ships no types for its dialect classes; the postgres one is a plain CommonJS class.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const PgDialect = require('knex/lib/dialects/postgres') as new (config: Knex.Config) => object

/** The dialect with pg-pool-guard as its driver: every client of knex's pool is a guarded standalone client. */
class GuardedPg extends (PgDialect as new (config: Knex.Config) => { _driver(): unknown }) {
  override _driver(): unknown {
    return pgg
  }
}

/**
 * As Sequelize does (sequelize.test.ts): the 57P01 ErrorResponse rejects the query, knex releases the
 * connection, and tarn's validate checks `__knex__disposed`, which knex's 'error'/'end' listeners set only
 * when pg sees the socket close; a query acquiring it in between fails with "Connection terminated unexpectedly".
 */
const REUSES = "knex's tarn pool takes back a connection killed under a query until pg hears the socket close"

function wrap(db: Knex): OpenStandaloneLibrary {
  return {
    query: async (text) => ((await db.raw(text)) as { rows: Record<string, unknown>[] }).rows,
    close: () => db.destroy(),
  }
}

standaloneSuite({
  name: 'knex default pool, driver subclass',
  file: 'test/ecosystem/knex-default-pool.test.ts',
  host: '127.0.25.2',
  example: 'examples/knex-default-pool/app.mjs',
  exampleOk: 'knex default pool',
  reusesKilledConnection: REUSES,
  async open(config) {
    return wrap(knex({ client: GuardedPg as unknown as typeof Knex.Client, connection: config as Knex.PgConnectionConfig, pool: { min: 0, max: 5 } }))
  },
})

let undo: (() => void) | undefined
after(() => undo?.())
standaloneSuite({
  name: 'knex default pool, guardAllClients',
  file: 'test/ecosystem/knex-default-pool.test.ts',
  host: '127.0.25.3',
  example: 'examples/knex-default-pool/guard-all-clients.mjs',
  exampleOk: 'knex default pool \\(guardAllClients\\)',
  reusesKilledConnection: REUSES,
  async open(config) {
    undo ??= pgg.guardAllClients()
    return wrap(knex({ client: 'pg', connection: config as Knex.PgConnectionConfig, pool: { min: 0, max: 5 } }))
  },
})
