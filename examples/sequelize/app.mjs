// Sequelize 6 pools pg.Clients itself and builds them with `dialectModule.Client`: hand it pg-pool-guard
// (the whole pg module, with a guarded Client) and every connection it opens is a guarded standalone client.
import pg, { standalone } from 'pg-pool-guard'
import { QueryTypes, Sequelize } from 'sequelize'

const sequelize = new Sequelize(process.env.DATABASE_URL, { dialect: 'postgres', dialectModule: pg, logging: false })

const [{ two }] = await sequelize.query('SELECT 1 + 1 AS two', { type: QueryTypes.SELECT })
// Sequelize's clients are not in any pg.Pool: the standalone guard reports them (pool "standalone host:port/db").
console.log(`sequelize ok: two=${two}, guarded sockets: ${standalone.snapshot().length}`)
await sequelize.close()
