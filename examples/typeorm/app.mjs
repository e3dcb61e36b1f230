// TypeORM on a guarded pool: TypeORM builds its pool with `driver.Pool`, so hand it pg with our Pool.
// Guard options go through `extra`, which TypeORM passes to the Pool constructor.
import pg from 'pg'
import { Pool } from 'pg-pool-guard'
import { DataSource } from 'typeorm'

const ds = new DataSource({ type: 'postgres', url: process.env.DATABASE_URL, driver: { ...pg, Pool }, extra: { guard: { minIdle: 1 } } })
await ds.initialize()

const [{ two }] = await ds.query('SELECT 1 + 1 AS two')
const pool = ds.driver.master // the guarded Pool TypeORM built
console.log(`typeorm ok: two=${two}, guarded sockets: ${pool.guard.snapshot().length}`)
await ds.destroy()
