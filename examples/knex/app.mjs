// knex >= 3.3 on a guarded pool: `connectionPool` takes a native pg.Pool (knex then keeps no pool of its own).
import knex from 'knex'
import { Pool } from 'pg-pool-guard'

const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 10 })
const db = knex({ client: 'pg', connectionPool: pool })

const { rows } = await db.raw('SELECT 1 + 1 AS two')
console.log(`knex ok: two=${rows[0].two}, guarded sockets: ${pool.guard.snapshot().length}`)
await db.destroy() // knex does not own the pool: end it yourself
await pool.end()
