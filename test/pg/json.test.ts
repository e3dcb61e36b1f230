/**
 * JSON.stringify of a guarded pool, its clients and its guards, as a logger does: it must not throw (the
 * guard refers back to its pool) and must not print the password. pg-pool's idle timer (a Node Timeout,
 * circular itself) makes a plain pg.Pool with idle clients throw as well, so the pools here run with
 * idleTimeoutMillis: 0, and each case is first serialised on a pg.Pool in the same state. (pg.Pool prints
 * a connectionString, password and all: pg-pool hides only `password`; ours hides both.)
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import pg from 'pg'
import { Client, guard, Pool, standalone } from '../../src/index'
import { useCluster } from '../helpers'

const PASSWORD = 'pw-SECRET-123'
const cluster = useCluster({ primaryHost: '127.0.33.4', password: PASSWORD })

/** JSON.stringify(value), which must succeed and, unless `plain` (pg's own objects), hold no trace of the password. */
function json(what: string, value: unknown, plain = false): string {
  const text = JSON.stringify(value)
  assert.equal(typeof text, 'string', what)
  if (!plain) for (const secret of [PASSWORD, 'SECRET-123']) assert.ok(!text.includes(secret), `${what} printed the password: ${text}`)
  return text
}

describe('JSON.stringify of pools, clients and guards', () => {
  for (const how of ['connectionString', 'password option'] as const) {
    it(`a guarded pool (${how}) and its clients, idle and checked out, like pg.Pool`, async () => {
      const c = cluster.get()
      const config = how === 'connectionString' ? { connectionString: c.primary.connectionString } : { ...c.config }
      const plain = new pg.Pool({ ...config, idleTimeoutMillis: 0 })
      const pool = new Pool({ ...config, idleTimeoutMillis: 0, guard: { metrics: 'off' } })
      try {
        for (const p of [plain, pool]) {
          const ours = p === pool
          const held = await p.connect()
          try {
            await p.query('SELECT 1') // a second client, left idle
            const pid = (held as unknown as { processID: number }).processID
            assert.equal((JSON.parse(json('a checked-out client', held, !ours)) as { processID: number }).processID, pid)
            assert.equal((JSON.parse(json('the pool', p, !ours)) as { _clients: unknown[] })._clients.length, 2)
          } finally {
            held.release()
          }
          json('the pool, both clients idle', p, !ours)
        }
        const summary = { poolName: pool.guard.poolName, connections: 2, primary: pool.guard.topology().primary, stopped: false }
        assert.deepEqual(JSON.parse(json('pool.guard', pool.guard)), summary)
        assert.deepEqual((JSON.parse(json('the pool', pool)) as { guard: unknown }).guard, summary)
      } finally {
        await Promise.all([plain.end(), pool.end()])
      }
    })
  }

  it('guard(existingPool): the pool and the guard', async () => {
    const c = cluster.get()
    const pool = new pg.Pool({ connectionString: c.primary.connectionString, idleTimeoutMillis: 0 })
    const g = guard(pool, { metrics: 'off' })
    try {
      await pool.query('SELECT 1')
      json('the guarded pg.Pool', pool)
      assert.equal((JSON.parse(json('its guard', g)) as { connections: number }).connections, 1)
    } finally {
      await pool.end()
    }
  })

  it('a standalone Client, the standalone guard and its groups', async () => {
    const c = cluster.get()
    const client = new Client({ connectionString: c.primary.connectionString, guard: { metrics: 'off' } })
    await client.connect()
    try {
      const pid = (client as unknown as { processID: number }).processID
      assert.equal((JSON.parse(json('the client', client)) as { processID: number }).processID, pid)
      json('standalone', standalone)
      const mine = standalone.guardOf(client)
      assert.ok(mine, 'the client has a standalone guard')
      const groups = JSON.parse(json('standalone.guards()', standalone.guards())) as { poolName: string; connections: number }[]
      const group = groups.find((x) => x.poolName === mine.poolName)
      assert.equal(group?.poolName, `standalone ${c.primary.host}:${c.port}/${c.database}`)
      assert.equal(group?.connections, 1)
    } finally {
      await client.end()
    }
  })
})
