// pg 8.23 pipelining on a guarded pool: `pipeline: true` passes through to every pg.Client. Queries on one
// client are written back to back without waiting; an eviction rejects every one of them with the coded error.
import { Pool } from 'pg-pool-guard'

const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 4, pipeline: true })
const client = await pool.connect()
try {
  const results = await Promise.all([1, 2, 3, 4].map((n) => client.query('SELECT $1::int AS n', [n])))
  console.log(`pipeline ok: ${results.map((r) => r.rows[0].n).join(',')}, guarded sockets: ${pool.guard.snapshot().length}`)
} finally {
  client.release()
}
await pool.end()
