// pg-boss 12 (Node >= 22.12) builds its pg.Pool inside start() (again after every stop()) and its
// LISTEN/NOTIFY connection as a `new pg.Client`: guardPgBoss() guards the pool at every start() and, through
// guardAllClients(), the LISTEN client. Options given to it apply to the pool's guard.
import { PgBoss } from 'pg-boss'
import { guardPgBoss, standalone } from 'pg-pool-guard'

const boss = guardPgBoss(new PgBoss({ connectionString: process.env.DATABASE_URL, useListenNotify: true, max: 4 }))
boss.on('error', (err) => console.error('pg-boss error:', err.message)) // pg-boss re-emits pool and LISTEN errors here

await boss.start()
await boss.createQueue('hello')
await boss.send('hello', { to: 'world' })
const [job] = await boss.fetch('hello')
await boss.complete('hello', job.id)

const pool = boss.getDb().pool // the pool start() built, guarded
const sockets = pool.guard.snapshot().length + standalone.snapshot().length // + the LISTEN client
console.log(`pg-boss ok: job ${job.data.to}, guarded sockets: ${sockets} (pool ${pool.guard.snapshot().length}, LISTEN ${standalone.snapshot().length})`)
await boss.stop({ graceful: false })
