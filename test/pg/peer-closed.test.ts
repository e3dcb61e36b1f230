/**
 * Connections the server closes: pg_terminate_backend, a server killed with SIGKILL, and a socket left in
 * CLOSE_WAIT because nobody read its FIN. They leave the pool without an unhandled error — also with no
 * 'error' listener on the pool, where pg.Pool would crash the process.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { WarningCodes, type EvictionEvent, Pool } from '../../src/index'
import { captureWarnings, events, until, useCluster } from '../helpers'

const cluster = useCluster({ primaryHost: '127.0.0.24' })
const uncaught: Error[] = []
const onUncaught = (err: Error): void => {
  uncaught.push(err)
}
before(() => process.on('uncaughtException', onUncaught))
after(() => {
  process.off('uncaughtException', onUncaught)
  assert.deepEqual(uncaught, [], 'no unhandled error')
})

describe('peer-closed connections', () => {
  it('pg_terminate_backend on idle and in-use clients, with no error listener on the pool', async () => {
    const c = cluster.get()
    const pool = new Pool({ ...c.config, max: 3 })
    const [a, b, held] = await Promise.all([pool.connect(), pool.connect(), pool.connect()])
    a.release()
    b.release()
    const pids = pool.guard.snapshot().map((r) => r.backendPid)
    const idlePids = pool.guard.snapshot().filter((r) => r.state === 'idle').map((r) => r.backendPid)
    const heldPid = pids.find((p) => !idlePids.includes(p))
    const removed = events(pool, 'remove', 2)
    const warnings = await captureWarnings(WarningCodes.IDLE_CLIENT_ERROR, async () => {
      const sleeping = held.query('SELECT pg_sleep(10)').then(() => 'completed', (e: Error & { code?: string }) => e.code ?? e.message)
      await c.primary.query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [pids])
      assert.equal(await sleeping, '57P01', 'admin_shutdown: the in-use query rejects with the server\'s error')
      await removed
    })
    assert.equal(warnings.length, 1, `idle errors became one coded warning, not a crash: ${warnings.map((w) => w.message).join(' | ')}`)
    assert.match(warnings[0].message, /terminating connection due to administrator command/)
    held.release()
    assert.ok(heldPid)
    assert.equal((await pool.query('SELECT 1 AS n')).rows[0].n, 1)
    await pool.end()
  })

  it('a client whose backend was terminated mid-query and released at once is not handed out again', async () => {
    const c = cluster.get()
    const pool = new Pool({ ...c.config, max: 1 })
    pool.on('error', () => {})
    for (let i = 0; i < 5; i++) {
      // The last round's client read its server when first back in the pool: a query taken out meanwhile
      // would queue behind that one, and the kill would hit the guard's query, not this one.
      await until(() => pool.guard.snapshot().every((r) => r.server !== null), 'the pooled session has read its server')
      const client = await pool.connect()
      const pid = (client as unknown as { processID: number }).processID
      const running = client.query('SELECT pg_sleep(10)').then(() => 'completed', (e: Error & { code?: string }) => e.code)
      await c.primary.query('SELECT pg_terminate_backend($1)', [pid])
      assert.equal(await running, '57P01')
      // Released in the moment between the FATAL error and the socket's close: pg would still call it
      // queryable and pg-pool would hand it to the next caller.
      client.release()
      assert.equal((await pool.query('SELECT 1 AS n')).rows[0].n, 1, `round ${i}`)
    }
    await pool.end()
  })

  it('a server killed with SIGKILL: every socket leaves the pool; after restart the pool works again', async () => {
    const c = cluster.get()
    const pool = new Pool({ ...c.config, max: 4 })
    pool.on('error', () => {}) // this time the application listens, as pg recommends
    const clients = await Promise.all(Array.from({ length: 4 }, () => pool.connect()))
    const held = clients.pop()!
    for (const cl of clients) cl.release()
    const removed = events(pool, 'remove', 3)
    const running = held.query('SELECT pg_sleep(10)').then(() => 'completed', (e: Error) => e.message)
    await c.primary.stop('kill')
    await removed
    assert.match(await running, /Connection terminated unexpectedly|terminating connection/)
    held.release()
    assert.equal(pool.totalCount, 0)
    await c.restart(c.servers[0])
    assert.equal((await pool.query('SELECT 2 AS n')).rows[0].n, 2)
    await pool.end()
  })

  it('CLOSE_WAIT that pg never noticed (its socket paused) is evicted as peer-closed', async () => {
    const c = cluster.get()
    const pool = new Pool({ ...c.config, max: 2 })
    const client = await pool.connect()
    client.release()
    const [row] = pool.guard.snapshot()
    // Nobody reads this socket any more, so its FIN stays unread in the kernel: CLOSE_WAIT.
    ;(client as unknown as { connection: { stream: { pause(): void } } }).connection.stream.pause()
    const evicted = new Promise<EvictionEvent>((resolve) => pool.guard.once('evict', resolve))
    await c.primary.query('SELECT pg_terminate_backend($1)', [row.backendPid])
    const e = await evicted
    assert.equal(e.reason, 'peer-closed')
    assert.equal(e.inUse, false)
    assert.match(e.evidence, /the peer closed the connection \(CLOSE_WAIT for (\d+ ms|[\d.]+ s)\)/)
    assert.equal(pool.totalCount, 0)
    await pool.end()
  })
})
