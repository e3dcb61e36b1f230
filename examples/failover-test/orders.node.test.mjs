// An application's failover test with node:test:  node --test examples/failover-test/orders.node.test.mjs
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Pool } from 'pg-pool-guard'
import { startCluster, writeLoad } from 'pg-pool-guard/testing'
import { placeOrder } from './orders.mjs'

test('orders keep landing through a failover to the standby', async (t) => {
  const cluster = await startCluster({ standby: true, primaryHost: '127.0.0.80', standbyHost: '127.0.0.81' })
  t.after(() => cluster.stop())
  const pool = new Pool({ ...cluster.config, host: cluster.hosts, guard: { targetSessionAttrs: 'read-write' } })
  t.after(() => pool.end())
  await pool.query('CREATE TABLE orders (id int PRIMARY KEY)')
  await cluster.caughtUp()

  let placed = 0
  let stop = false
  const placing = (async () => {
    while (!stop) await placeOrder(pool, placed++)
  })()
  const background = await writeLoad(pool, { writers: 2 }) // other traffic, to see where writes land
  const [oldPrimary, standby] = cluster.servers
  await background.firstAckOn(oldPrimary.host)
  await cluster.stopPrimary('fast') // the primary goes away (its last WAL reaches the standby)...
  const failedAt = Date.now()
  await cluster.promote(standby) // ...and the standby takes over
  const promotedAt = Date.now() // (how long promote() takes is the server's business, not the pool's)
  const first = await background.firstAckOn(standby.host, failedAt)
  stop = true
  await Promise.all([placing, background.stop()])

  const { rows } = await standby.query('SELECT count(*)::int AS n FROM orders')
  assert.equal(rows[0].n, placed, 'every order placed before, during and after is on the new primary')
  assert.ok(first.at - promotedAt < 5000, `writes resumed ${first.at - promotedAt} ms after the promotion`)
})
