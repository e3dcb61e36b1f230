// Kysely on a guarded pool: PostgresDialect takes any pg.Pool, so it takes ours.
import { Kysely, PostgresDialect, sql } from 'kysely'
import { Pool } from 'pg-pool-guard'

const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 10 })
const db = new Kysely({ dialect: new PostgresDialect({ pool }) })

const { rows } = await sql`SELECT 1 + 1 AS two`.execute(db)
console.log(`kysely ok: two=${rows[0].two}, guarded sockets: ${pool.guard.snapshot().length}`)
await db.destroy() // ends the pool too
