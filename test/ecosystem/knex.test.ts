/** knex >= 3.3 (`connectionPool` takes a native pg.Pool, knex PR #6414) on a guarded pool: examples/knex. */
import knex from 'knex'
import { Pool } from '../../src/index'
import { ecosystemSuite } from './suite'

ecosystemSuite({
  name: 'knex',
  file: 'test/ecosystem/knex.test.ts',
  host: '127.0.6.5',
  example: 'examples/knex/app.mjs',
  async open(config) {
    const pool = new Pool({ ...config, max: 5 })
    const db = knex({ client: 'pg', connectionPool: pool })
    return {
      pool,
      query: async (text) => ((await db.raw(text)) as { rows: Record<string, unknown>[] }).rows,
      async close() {
        await db.destroy() // knex does not own an external pool
        await pool.end()
      },
    }
  },
})
