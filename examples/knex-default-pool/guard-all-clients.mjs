// knex's default pool, any knex version, no subclass: guardAllClients() makes every `new pg.Client()` in
// the process a guarded standalone client (pg.Pool is not affected), knex's included. It returns an undo.
import knex from 'knex'
import { guardAllClients, standalone } from 'pg-pool-guard'

guardAllClients()
const db = knex({ client: 'pg', connection: process.env.DATABASE_URL })

const { rows } = await db.raw('SELECT 1 + 1 AS two')
console.log(`knex default pool (guardAllClients) ok: two=${rows[0].two}, guarded sockets: ${standalone.snapshot().length}`)
await db.destroy()
