/**
 * Clients outside any pool: the drop-in Client class, guardClient() on a client something else built,
 * guardAllClients() for every `new pg.Client()`, and a pool whose Client class the guard cannot see into.
 * Each standalone client is hardened, tracked (snapshot rows that match pg_stat_activity) and judged:
 * a frozen server evicts its query with the coded error, which its owner hears as 'error'.
 */
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { after, afterEach, describe, it } from 'node:test'
import pg from 'pg'
import { Client, ConnectionEvictedError, ErrorCodes, type EvictionEvent, guardAllClients, guardClient, Pool, standalone, WarningCodes } from '../../src/index'
import { captureWarnings, nextEvent, until, useCluster } from '../helpers'
import { meterProvider } from '../metrics'

const cluster = useCluster({ primaryHost: '127.0.24.1' })
// Each test starts with no standalone guard (a group's options are its first client's).
afterEach(() => standalone.stopAll())
after(() => standalone.stopAll())

/** pg_stat_activity's view of a backend: its pid and the client's port. */
async function activity(pid: number): Promise<{ pid: number; client_port: number } | undefined> {
  const { rows } = await cluster.get().primary.query<{ pid: number; client_port: number }>('SELECT pid, client_port FROM pg_stat_activity WHERE pid = $1', [pid])
  return rows[0]
}

describe('standalone clients', () => {
  it('the drop-in Client is hardened and tracked, and leaves the snapshot when it ends', async () => {
    const client = new Client({ ...cluster.get().config, guard: { keepAliveIdleMs: 4000 } })
    await client.connect()
    const pid = (client as unknown as { processID: number }).processID
    const row = standalone.snapshot().find((r) => r.backendPid === pid)
    assert.ok(row, 'a snapshot row for the client')
    assert.equal(row.state, 'in-use')
    assert.match(row.pool, /^standalone 127\.0\.24\.1:\d+\//)
    const seen = await activity(pid)
    assert.equal(row.localPort, seen?.client_port, 'the row names the socket pg_stat_activity sees')
    assert.equal(row.socketOptions?.keepAliveIdleMs, 4000)
    assert.equal((await client.query('SELECT 1 AS n')).rows[0].n, 1)
    await client.end()
    await until(() => !standalone.snapshot().some((r) => r.backendPid === pid), 'the row to go')
  })

  it('standalone clients report pool metrics under their group, with no pool ceiling', async () => {
    const m = meterProvider()
    const c = cluster.get()
    const clients = [0, 1].map(() => new Client({ ...c.config, database: 'postgres', application_name: 'metrics', guard: { meterProvider: m.provider } }))
    await Promise.all(clients.map((x) => x.connect()))
    const name = standalone.guardOf(clients[0])!.poolName
    const got = await m.collect()
    assert.equal(got.sum('db.client.connection.count', { 'db.client.connection.pool.name': name }), 2)
    assert.ok(!got.metrics.some((x) => x.descriptor.name === 'db.client.connection.max'), 'no max: no pool sets one')
    await Promise.all(clients.map((x) => x.end()))
    await m.provider.shutdown()
  })

  it('guardClient() on a connected pg.Client: a frozen server evicts its query with the coded error, heard as error', async () => {
    const c = cluster.get()
    const client = new pg.Client(c.config)
    await client.connect()
    assert.equal(guardClient(client, { probeAfterMs: 1000 }), client)
    const errors: Error[] = []
    client.on('error', (e) => errors.push(e))
    const guard = standalone.guardOf(client)
    assert.ok(guard, 'the client has a guard')
    assert.equal(guard.snapshot().length, 1)
    const evicted = nextEvent<[EvictionEvent]>(standalone, 'evict', 20_000)
    const started = Date.now()
    c.primary.freeze()
    try {
      const err = await client.query('SELECT 1').then(() => null, (e: Error) => e)
      assert.ok(err instanceof ConnectionEvictedError, `coded: ${String(err)}`)
      assert.equal(err.code, ErrorCodes.CONNECTION_EVICTED)
      assert.ok(Date.now() - started < 15_000, `settled in ${Date.now() - started} ms`)
      const [e] = await evicted
      assert.equal(e.reason, 'host-unresponsive')
      const next = await client.query('SELECT 1').then(() => null, (x: Error) => x)
      assert.ok(next instanceof ConnectionEvictedError, 'a later query gets the same coded error')
    } finally {
      c.primary.thaw()
    }
    assert.ok(errors.every((x) => x instanceof ConnectionEvictedError), errors.map(String).join())
  })

  it('guardAllClients(): every new pg.Client is guarded until undone; pg.Pool is not touched', async () => {
    const c = cluster.get()
    const undo = guardAllClients()
    let client: pg.Client
    try {
      client = new pg.Client(c.config)
      const pool = new pg.Pool({ ...c.config, max: 1 })
      await client.connect()
      await pool.query('SELECT 1')
      const pid = (client as unknown as { processID: number }).processID
      assert.ok(standalone.snapshot().some((r) => r.backendPid === pid), 'the new client is tracked')
      assert.equal(standalone.snapshot().length, 1, 'the pg.Pool client is not a standalone client')
      await pool.end()
    } finally {
      undo()
    }
    assert.equal(pg.Client.name, 'Client')
    const plain = new pg.Client(c.config)
    await plain.connect()
    assert.equal(standalone.guardOf(plain), undefined, 'undone: a new client is plain pg again')
    await Promise.all([client.end(), plain.end()])
  })

  it('a pool whose Client class the guard cannot see into works as pg.Pool, with one coded warning', async () => {
    const c = cluster.get()
    /** A test double in front of a real client: an EventEmitter with connect/query/end and no pg internals. */
    class Delegating extends EventEmitter {
      private readonly inner: pg.Client
      constructor(config: pg.ClientConfig) {
        super()
        this.inner = new pg.Client(config)
        this.inner.on('error', (e) => this.emit('error', e))
      }
      connect(cb: (err?: Error) => void): void {
        this.inner.connect((err: Error | undefined) => cb(err ?? undefined))
      }
      query(...args: unknown[]): unknown {
        return (this.inner.query as (...a: unknown[]) => unknown)(...args)
      }
      end(): Promise<void> {
        return this.inner.end()
      }
    }
    const warnings = await captureWarnings(WarningCodes.CLIENT_UNGUARDED, async () => {
      const pool = new Pool({ ...c.config, Client: Delegating as unknown as typeof pg.Client, max: 2 })
      const rows = await Promise.all([pool.query('SELECT 1 AS n'), pool.query('SELECT 2 AS n')])
      assert.deepEqual(rows.map((r) => r.rows[0].n), [1, 2])
      assert.deepEqual(pool.guard.snapshot(), [], 'nothing tracked')
      await pool.end()
    })
    assert.equal(warnings.length, 1, warnings.map((w) => w.message).join(' | '))
    assert.match(warnings[0].message, /Delegating/)
  })
})
