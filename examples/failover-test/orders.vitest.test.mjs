// The same failover test with vitest:  npx vitest run examples/failover-test/orders.vitest.test.mjs
import { afterAll, expect, test } from 'vitest'
import { Pool } from 'pg-pool-guard'
import { startCluster } from 'pg-pool-guard/testing'
import { placeOrder } from './orders.mjs'

const cleanup = []
afterAll(async () => {
  for (const fn of cleanup.reverse()) await fn()
})

test('orders keep landing through a failover to the standby', async () => {
  const cluster = await startCluster({ standby: true, primaryHost: '127.0.0.82', standbyHost: '127.0.0.83' })
  cleanup.push(() => cluster.stop())
  const pool = new Pool({ ...cluster.config, host: cluster.hosts, guard: { targetSessionAttrs: 'read-write' } })
  cleanup.push(() => pool.end())
  await pool.query('CREATE TABLE orders (id int PRIMARY KEY)')
  await cluster.caughtUp()

  let placed = 0
  let retried = 0
  const placing = (async () => {
    while (placed < 2000) if ((await placeOrder(pool, placed++)) > 1) retried++
  })()
  while (placed < 300) await new Promise((r) => setTimeout(r, 10))
  await cluster.stopPrimary('fast')
  await cluster.promote()
  await placing

  const { rows } = await cluster.primary.query('SELECT count(*)::int AS n FROM orders')
  expect(rows[0].n).toBe(2000)
  expect(cluster.primary.host).toBe('127.0.0.83')
  expect(retried).toBeGreaterThan(0) // some orders met the failover and were retried
}, 60_000)
