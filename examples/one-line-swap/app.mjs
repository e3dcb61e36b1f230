// The one-line swap. Before:  import { Pool } from 'pg'
import { Pool } from 'pg-pool-guard'

// Nothing else changes: same options, same methods, same events.
const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 4 })
pool.on('error', (err) => console.error('idle client error', err.message))

const { rows } = await pool.query('SELECT 1 + 1 AS two')
console.log(`query ok: two=${rows[0].two}`)

// What the guard adds: one row per pooled socket, with the kernel's view of it.
for (const row of pool.guard.snapshot()) {
  const o = row.socketOptions
  console.log(
    `socket ${row.localAddress}:${row.localPort} -> ${row.remoteAddress}:${row.remotePort} backend pid ${row.backendPid}, ` +
      `keepalive ${o.keepAliveIdleMs}/${o.keepAliveIntervalMs}/${o.keepAliveCount}, user timeout ${o.userTimeoutMs} ms (${o.via})`
  )
}
await pool.end()
