/** Kysely (PostgresDialect takes a pg.Pool) on a guarded pool: examples/kysely. */
import { Kysely, PostgresDialect, sql } from 'kysely'
import { Pool } from '../../src/index'
import { ecosystemSuite } from './suite'

ecosystemSuite({
  name: 'Kysely',
  file: 'test/ecosystem/kysely.test.ts',
  host: '127.0.6.2',
  example: 'examples/kysely/app.mjs',
  async open(config) {
    const pool = new Pool({ ...config, max: 5 })
    const db = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool }) })
    return {
      pool,
      query: async (text) => (await sql.raw<Record<string, unknown>>(text).execute(db)).rows,
      close: () => db.destroy(),
    }
  },
})
