// The same swap in CommonJS. Before:  const { Pool } = require('pg')
const { Pool } = require('pg-pool-guard')

async function main() {
  const pool = new Pool({ connectionString: process.env.DATABASE_URL })
  const client = await pool.connect()
  try {
    const { rows } = await client.query('SELECT current_database() AS db')
    console.log(`query ok: db=${rows[0].db}, guarded sockets=${pool.guard.snapshot().length}`)
  } finally {
    client.release()
  }
  await pool.end()
}
main().catch((err) => {
  console.error(err)
  process.exit(1)
})
