/** drizzle-orm (node-postgres driver: drizzle({ client: pool })) on a guarded pool: examples/drizzle. */
import { sql } from 'drizzle-orm'
import { drizzle } from 'drizzle-orm/node-postgres'
import { Pool } from '../../src/index'
import { ecosystemSuite } from './suite'

ecosystemSuite({
  name: 'drizzle',
  file: 'test/ecosystem/drizzle.test.ts',
  host: '127.0.6.3',
  example: 'examples/drizzle/app.mjs',
  async open(config) {
    const pool = new Pool({ ...config, max: 5 })
    const db = drizzle({ client: pool })
    return {
      pool,
      query: async (text) => (await db.execute<Record<string, unknown>>(sql.raw(text))).rows,
      close: () => pool.end(),
    }
  },
})
