/**
 * Every query settles, through the connection's whole life (issue 11), on real kernel faults: the only host
 * blackholed with no standby, pool.connect() waiters during a fault, pool.end() during a fault, and a fresh
 * pool whose host is silent from the start. Queries get the coded error or an answer, never a hang.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ErrorCodes, Pool, WarningCodes } from '../../src/index'
import { captureWarnings, kernelSkip, until, useBlackholedCluster } from '../helpers'
import { queryLoop } from '../helpers-load'

const skip = kernelSkip('test/kernel/settle.test.ts')
const { cluster, cut } = useBlackholedCluster({ primaryHost: '127.0.12.21' })
const CODED = new Set<string>([ErrorCodes.CONNECTION_EVICTED, ErrorCodes.HOST_DOWN])

describe('every query settles (kernel faults)', { skip }, () => {
  it('the only host blackholed for 6 s, 8 workers: no query held past 2 s, coded errors, service back within 1 s of the lift', async () => {
    const pool = new Pool({ ...cluster.get().config, max: 8 })
    const load = queryLoop(() => pool.query('SELECT 1'))
    await until(() => load.outcomes.filter((o) => o.ok).length > 50, 'the load runs')
    const fault = await cut()
    const cutAt = Date.now()
    await new Promise((r) => setTimeout(r, 6000))
    await fault.remove()
    const liftedAt = Date.now()
    await until(() => load.firstOkAfter(liftedAt) !== undefined, 'a query succeeds after the lift', 10_000)
    const first = load.firstOkAfter(liftedAt)!
    const held = load.longestHeldMs(cutAt)
    await load.stop()
    const during = load.outcomes.filter((o) => o.startedAt >= cutAt && o.startedAt < liftedAt)
    const codes = new Set(during.filter((o) => !o.ok).map((o) => o.code))
    console.log(`# blackhole 6 s: longest query held ${held} ms; ${during.length} queries during the fault, codes ${[...codes].join(', ')}; first success ${first.endedAt - liftedAt} ms after the lift`)
    assert.ok(held < 2000, `a query was held ${held} ms`)
    assert.ok([...codes].every((c) => CODED.has(String(c))), `uncoded errors: ${[...codes].join(', ')}`)
    assert.ok(first.endedAt - liftedAt < 1000, `first success ${first.endedAt - liftedAt} ms after the lift`)
    assert.deepEqual(load.pending(), [])
    await pool.end()
  })

  it('pool.connect() waiters (max 2, 6 waiting) during a 5 s fault all settle; after the heal service resumes; end() resolves', async () => {
    const pool = new Pool({ ...cluster.get().config, max: 2 })
    await Promise.all([pool.query('SELECT 1'), pool.query('SELECT 1')])
    const fault = await cut()
    const started = Date.now()
    const settled: number[] = []
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, async () => {
        const client = await pool.connect()
        try {
          return await client.query('SELECT pg_sleep(0.2)')
        } finally {
          client.release()
          settled.push(Date.now() - started)
        }
      }).map((p) => p.finally(() => settled.push(Date.now() - started)))
    )
    const took = Date.now() - started
    await fault.remove()
    const codes = results.map((r) => (r.status === 'fulfilled' ? 'ok' : (r.reason as { code?: string }).code ?? String(r.reason)))
    console.log(`# 8 callers on a pool of 2 during a blackhole: all settled after ${took} ms: ${codes.join(', ')}`)
    assert.ok(took < 5000, `settled after ${took} ms`)
    assert.ok(codes.every((c) => CODED.has(c)), codes.join(', '))
    await until(async () => (await pool.query('SELECT 1').then(() => true, () => false)), 'service resumes after the heal', 5000)
    const ended = Date.now()
    await pool.end()
    assert.ok(Date.now() - ended < 2000)
  })

  it('pool.end() during a fault: queries in flight settle coded, end() resolves, the guard keeps judging until the last socket is gone', async () => {
    const pool = new Pool({ ...cluster.get().config, max: 8 })
    await Promise.all(Array.from({ length: 8 }, () => pool.query('SELECT 1')))
    const fault = await cut()
    const queries = Array.from({ length: 8 }, () => pool.query('SELECT 1').then(() => 'ok', (e: { code?: string }) => e.code ?? 'uncoded'))
    await until(() => pool.idleCount === 0 && pool.waitingCount === 0, 'all 8 queries are on their sockets')
    const started = Date.now()
    const ended = pool.end()
    const codes = await Promise.all(queries)
    await ended
    const took = Date.now() - started
    await fault.remove()
    console.log(`# end() during a blackhole: 8 queries ${codes.join(', ')}; end() resolved after ${took} ms`)
    assert.ok(codes.every((c) => c === ErrorCodes.CONNECTION_EVICTED), codes.join(', '))
    assert.ok(took < 5000, `end() took ${took} ms`)
  })

  it("an evicted checked-out client with no 'error' listener (Kysely, knex) gives no warning: its query has the coded error", async () => {
    const pool = new Pool({ ...cluster.get().config, max: 2 })
    const client = await pool.connect()
    const warnings = await captureWarnings(WarningCodes.CLIENT_ERROR, async () => {
      const fault = await cut()
      const err = await client.query('SELECT 1').then(() => undefined, (e: { code?: string }) => e)
      await fault.remove()
      assert.equal(err?.code, ErrorCodes.CONNECTION_EVICTED)
      client.release()
      await new Promise((r) => setTimeout(r, 200)) // the destroyed socket closes: no warning may follow
    })
    assert.deepEqual(warnings.map((w) => w.message), [])
    await pool.end()
  })

  it('callers still waiting for a client when end() is called get a coded error (pg-pool would leave them waiting)', async () => {
    const pool = new Pool({ ...cluster.get().config, max: 2 })
    await Promise.all([pool.query('SELECT 1'), pool.query('SELECT 1')])
    const queries = Array.from({ length: 4 }, () => pool.query('SELECT 1').then(() => 'ok', (e: { code?: string }) => e.code ?? 'uncoded'))
    await pool.end() // the same tick: the queries wait for the idle clients pg-pool is removing
    assert.deepEqual(await Promise.all(queries), Array(4).fill(ErrorCodes.POOL_ENDED))
  })

  it('a fresh pool whose only host is silent: the first query fails coded within connectTimeoutMs, not after minutes', async () => {
    const fault = await cut()
    const pool = new Pool({ ...cluster.get().config, guard: { connectTimeoutMs: 2000 } })
    const started = Date.now()
    const err = await pool.query('SELECT 1').then(() => undefined, (e: Error & { code?: string }) => e)
    const took = Date.now() - started
    await fault.remove()
    console.log(`# fresh pool, silent host: ${err?.code} after ${took} ms (${err?.message})`)
    assert.equal(err?.code, ErrorCodes.CONNECTION_EVICTED)
    assert.match(err!.message, /connect-timeout|host-dead|zombie/)
    assert.ok(took < 3500, `${took} ms`)
    await pool.end()
  })
})
