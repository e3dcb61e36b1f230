// drizzle on a guarded pool: drizzle({ client }) takes any pg.Pool, so it takes ours.
import { sql } from 'drizzle-orm'
import { drizzle } from 'drizzle-orm/node-postgres'
import { Pool } from 'pg-pool-guard'

const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 10 })
const db = drizzle({ client: pool }) // or drizzle(pool)

const { rows } = await db.execute(sql`SELECT 1 + 1 AS two`)
console.log(`drizzle ok: two=${rows[0].two}, guarded sockets: ${pool.guard.snapshot().length}`)
await pool.end()
