/**
 * What HikariCP users expect on top of pg-pool: leak detection with the acquiring stack, jitter on
 * maxLifetimeSeconds, and a kept-warm minimum of idle clients.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import pg from 'pg'
import { WarningCodes, type LeakReport, Pool } from '../../src/index'
import { captureWarnings, events, nextEvent, until, useCluster } from '../helpers'

const cluster = useCluster({ primaryHost: '127.0.0.6' })

describe('housekeeping', () => {
  it('leak detection reports a held client once, with the stack of the code that acquired it', async () => {
    const pool = new Pool({ ...cluster.get().config, guard: { leakDetectionThresholdMs: 200 } })
    const leaks: LeakReport[] = []
    pool.guard.on('leak', (r) => leaks.push(r))
    async function leakyHandler() {
      return pool.connect()
    }
    const client = await leakyHandler()
    const [report] = await nextEvent<[LeakReport]>(pool.guard, 'leak', 5000)
    assert.ok(report.heldMs >= 200)
    assert.match(report.stack, /leakyHandler/)
    assert.equal(report.host, cluster.get().primary.host)
    // Absence has no event: hold for four more check periods and count again.
    await new Promise((r) => setTimeout(r, 250))
    assert.equal(leaks.length, 1, 'reported once per checkout')
    client.release()
    await pool.end()
  })

  it('without a leak listener the report is a coded process warning', async () => {
    const pool = new Pool({ ...cluster.get().config, guard: { leakDetectionThresholdMs: 100 } })
    let client: pg.PoolClient | undefined
    const warnings = await captureWarnings(WarningCodes.LEAK_DETECTED, async () => {
      client = await pool.connect()
      await new Promise<void>((resolve) => process.once('warning', () => resolve()))
    })
    assert.equal(warnings.length, 1)
    assert.match(warnings[0].message, /held for \d+ ms/)
    assert.ok(!warnings[0].message.includes(String(cluster.get().password)))
    client!.release()
    await pool.end()
  })

  it('maxLifetimeSeconds is jittered per client so a pool never expires at once (pg.Pool: all together)', async () => {
    const spread = async (pool: pg.Pool): Promise<number[]> => {
      const clients = await Promise.all(Array.from({ length: 6 }, () => pool.connect()))
      const started = Date.now()
      const removedAt: number[] = []
      pool.on('remove', () => removedAt.push(Date.now() - started))
      for (const c of clients) c.release()
      await events(pool, 'remove', 6, 5000)
      await pool.end()
      return removedAt
    }
    const plain = await spread(new pg.Pool({ ...cluster.get().config, max: 6, maxLifetimeSeconds: 2 }))
    const guarded = await spread(new Pool({ ...cluster.get().config, max: 6, maxLifetimeSeconds: 2, guard: { maxLifetimeJitter: 0.5 } }))
    const width = (xs: number[]): number => Math.max(...xs) - Math.min(...xs)
    assert.ok(width(plain) < 100, `pg.Pool expires all together: ${plain}`)
    assert.ok(width(guarded) > 100, `guarded expiries are spread: ${guarded}`)
    assert.ok(guarded.every((t) => t >= 900 && t <= 2100), `within (1 - 0.5) x 2 s .. 2 s: ${guarded}`)
  })

  it('minIdle keeps idle clients warm, refills after a removal, and never exceeds max', async () => {
    const pool = new Pool({ ...cluster.get().config, max: 5, guard: { minIdle: 3 } })
    await until(() => pool.idleCount === 3, 'three idle clients are warm')
    assert.equal(pool.totalCount, 3)
    const [victim] = pool.guard.snapshot()
    const refilled = events(pool, 'release', 1)
    pool.on('error', () => {})
    await cluster.get().primary.query('SELECT pg_terminate_backend($1)', [victim.backendPid])
    await refilled
    assert.equal(pool.idleCount, 3)
    assert.ok(!pool.guard.snapshot().some((r) => r.backendPid === victim.backendPid), 'the killed one is gone')
    await pool.end()

    const capped = new Pool({ ...cluster.get().config, max: 2, guard: { minIdle: 4 } })
    await events(capped, 'release', 2)
    assert.equal(capped.totalCount, 2)
    await capped.end()
  })
})
