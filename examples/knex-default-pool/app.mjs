// knex's default pool (tarn) builds its pg.Clients with `new this.driver.Client()`, the driver being what
// the dialect's `_driver()` returns. A two-line subclass makes it pg-pool-guard: every client knex's pool
// opens is a guarded standalone client, and nothing else in the process changes. (knex >= 3.3 can instead
// take a guarded Pool as `connectionPool`: examples/knex.)
import knex from 'knex'
import PgDialect from 'knex/lib/dialects/postgres/index.js'
import pg, { standalone } from 'pg-pool-guard'

class GuardedPg extends PgDialect { _driver() { return pg } }
// Guard options, if any, go in the connection config: knex passes it to the Client, which reads `guard`.
const db = knex({ client: GuardedPg, connection: { connectionString: process.env.DATABASE_URL, guard: { keepAliveIdleMs: 4000 } } })

const { rows } = await db.raw('SELECT 1 + 1 AS two')
console.log(`knex default pool ok: two=${rows[0].two}, guarded sockets: ${standalone.snapshot().length}`)
await db.destroy()
