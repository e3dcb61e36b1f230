/**
 * pg 8.23 pipelining (`pipeline: true`, passed through to every pg.Client): several queries written back to
 * back on one pooled client, in flight together. Whatever ends the connection must reject every one of them:
 * a killed backend, and (root only) a blackhole, each query with PGG_CONNECTION_EVICTED. examples/pipeline.
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import type pg from 'pg'
import { ErrorCodes, Pool } from '../../src/index'
import { blackhole, type KernelFault } from '../../src/testing/kernel-faults'
import { kernelSkip, until } from '../helpers'
import { crashWatch, ecosystemSuite } from './suite'

const suite = ecosystemSuite({
  name: 'pg pipeline',
  file: 'test/ecosystem/pipeline.test.ts',
  host: '127.0.6.7',
  example: 'examples/pipeline/app.mjs',
  async open(config) {
    const pool = new Pool({ ...config, max: 5, pipeline: true })
    return { pool, query: async (text) => (await pool.query(text)).rows, close: () => pool.end() }
  },
})
const faults: KernelFault[] = []
after(async () => {
  for (const f of faults) await f.remove()
})

/** pg's own state (no public API says how many queries a client has on the wire). */
const wire = (c: pg.PoolClient): { pipeline: boolean; queued: number; sent: number } => {
  const x = c as unknown as { pipeline: boolean; _queryQueue: unknown[]; _sentQueryQueue: unknown[]; _activeQuery: unknown }
  return { pipeline: x.pipeline, queued: x._queryQueue.length, sent: x._sentQueryQueue.length + (x._activeQuery ? 1 : 0) }
}

const settle = (ps: Promise<unknown>[]): Promise<Error[]> =>
  Promise.all(ps.map((p) => p.then((v) => assert.fail(`resolved: ${JSON.stringify(v)}`), (e: Error) => e)))

describe('pipelined queries on one pooled client', () => {
  it('four pipelined queries on a killed backend all reject; the next query works', async () => {
    const pool = new Pool({ ...suite.cluster.get().config, max: 2, pipeline: true, application_name: 'pgg-eco-pipeline-kill' })
    const watch = crashWatch()
    try {
      const client = await pool.connect()
      const pid = (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number
      const inFlight = settle([client.query('SELECT pg_sleep(30)'), ...[1, 2, 3].map((n) => client.query('SELECT $1::int AS n', [n]))])
      assert.deepEqual(wire(client), { pipeline: true, queued: 0, sent: 4 })
      await until(async () => {
        const { rows } = await suite.cluster.get().primary.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active'", [pid])
        return rows.length === 1
      }, 'pg_sleep(30) is running')
      await suite.cluster.get().primary.query('SELECT pg_terminate_backend($1)', [pid])
      const errors = await inFlight
      console.log(`# pipeline kill: ${errors.map((e) => (e as Error & { code?: string }).code ?? e.message).join(' | ')}`)
      assert.equal(errors.length, 4)
      client.release()
      assert.equal((await pool.query('SELECT 7 AS n')).rows[0].n, 7)
      assert.deepEqual(watch.stop(), [])
    } finally {
      watch.stop()
      await pool.end()
    }
  })

  const skip = kernelSkip('test/ecosystem/pipeline.test.ts (blackhole)')
  it('a blackhole evicts the client: every pipelined query rejects with PGG_CONNECTION_EVICTED', { skip }, async () => {
    const c = suite.cluster.get()
    const pool = new Pool({ ...c.config, max: 2, pipeline: true })
    const watch = crashWatch()
    try {
      const client = await pool.connect()
      const warm = await Promise.all([1, 2, 3, 4].map((n) => client.query('SELECT $1::int AS n', [n])))
      assert.deepEqual(warm.map((r) => r.rows[0].n), [1, 2, 3, 4])
      const fault = await blackhole(c.primary.host, { port: c.port })
      faults.push(fault)
      const started = Date.now()
      const inFlight = settle([1, 2, 3, 4, 5].map((n) => client.query('SELECT $1::int AS n', [n])))
      assert.deepEqual(wire(client), { pipeline: true, queued: 0, sent: 5 })
      const errors = await inFlight
      const elapsed = Date.now() - started
      await fault.remove()
      console.log(`# pipeline blackhole: ${errors.length} rejected after ${elapsed} ms: ${errors[0].message}`)
      for (const e of errors) assert.equal((e as Error & { code?: string }).code, ErrorCodes.CONNECTION_EVICTED, e.stack)
      assert.ok(elapsed < 5000, `rejected after ${elapsed} ms`)
      client.release()
      assert.equal((await pool.query('SELECT 7 AS n')).rows[0].n, 7)
      assert.deepEqual(watch.stop(), [])
    } finally {
      watch.stop()
      await pool.end()
    }
  })
})
