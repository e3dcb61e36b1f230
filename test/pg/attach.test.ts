/** guard(existingPool): the same protection for a pg.Pool that another library created. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import pg from 'pg'
import { GUARD_DEFAULTS, guard } from '../../src/index'
import { readSocketOptions } from '../../src/socket/harden'
import { useCluster } from '../helpers'

const cluster = useCluster({ primaryHost: '127.0.0.7' })

describe('guard(existingPool)', () => {
  it('tracks and hardens the clients the pool already holds, and every new one', async () => {
    const pool = new pg.Pool({ ...cluster.get().config, keepAlive: true })
    const held = await pool.connect()
    const idle = await pool.connect()
    idle.release()

    const g = guard(pool, { keepAliveIdleMs: 2000 })
    const before = g.snapshot()
    assert.deepEqual(before.map((r) => r.state).sort(), ['idle', 'in-use'])
    for (const row of before) {
      assert.equal(readSocketOptions(row.fd!)?.keepAliveIdleMs, 2000)
      assert.equal(readSocketOptions(row.fd!)?.userTimeoutMs, GUARD_DEFAULTS.userTimeoutMs)
      assert.ok(row.backendPid)
    }

    const third = await pool.connect() // idle one reused
    const fourth = await pool.connect() // new: hardened when its socket connects
    const rows = g.snapshot()
    assert.equal(rows.length, 3)
    for (const row of rows) assert.equal(readSocketOptions(row.fd!)?.keepAliveIdleMs, 2000)
    assert.throws(() => guard(pool), /already guarded/)
    held.release()
    third.release()
    fourth.release()
    await pool.end()
  })
})
