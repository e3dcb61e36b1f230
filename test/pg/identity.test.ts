/**
 * Every connection knows the server it reached, not only the address it dialled: system identifier,
 * postmaster start time, port, role, timeline — read once per connection, in one round trip, and never again
 * per query: before the pool takes the connection where a check depends on it (a role asked for, a server
 * fenced), else the first moment the client is idle. The snapshot shows it; one server reached under two
 * names is one identity.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import pg from 'pg'
import { Client, Pool, standalone } from '../../src/index'
import { serverIdentity } from '../../src/topology/role-query'
import { until, useCluster } from '../helpers'

const A = '127.0.68.2'
const A2 = '127.0.68.12' // the same server on a second address
const cluster = useCluster({ primaryHost: A, settings: { listen_addresses: `${A},${A2}` } })

/** A pg.Client that counts the ReadyForQuery messages it receives: one per round trip of the simple or extended protocol. */
class Counting extends pg.Client {
  rfq = 0
  constructor(config?: pg.ClientConfig) {
    super(config)
    ;(this as unknown as { connection: { on(e: string, f: () => void): void } }).connection.on('readyForQuery', () => this.rfq++)
  }
}

describe('server identity per connection', () => {
  it('one round trip after login, none per query; the snapshot shows the server', async () => {
    const c = cluster.get()
    const pool = new Pool({ ...c.config, max: 1, Client: Counting } as pg.PoolConfig)
    const pooled = await pool.connect()
    const client = pooled as unknown as Counting
    for (let i = 0; i < 10; i++) await client.query('SELECT 1')
    pooled.release()
    // Nothing to decide at login (one host, any role, nothing fenced): the identity is read once the
    // client is idle — one round trip for the connection's life, none per query.
    await until(() => pool.guard.snapshot()[0]?.server !== null, 'the session read its server')
    assert.equal(client.rfq, 1 + 10 + 1, 'login, ten queries, one identity query')
    for (let i = 0; i < 10; i++) await pool.query('SELECT 1')
    assert.equal(client.rfq, 22)
    const { rows } = await c.primary.query<{ id: string; started: string; port: number }>(
      'SELECT system_identifier::text AS id, pg_postmaster_start_time()::text AS started, current_setting(\'port\')::int AS port FROM pg_control_system()'
    )
    const [row] = pool.guard.snapshot()
    assert.deepEqual(row.server, {
      id: serverIdentity(rows[0].id, { started: rows[0].started, server_port: rows[0].port }),
      systemId: rows[0].id, startedAt: rows[0].started, address: A, port: rows[0].port,
      role: { inHotStandby: false, readOnly: false }, timeline: 1,
    })
    assert.equal(row.pooler, false)
    assert.equal(row.timeline, 1)
    assert.equal(JSON.stringify(row).includes(c.password), false)
    await pool.end()
  })

  it('one server under two names has one identity; a standalone client is not asked where nothing needs it', async () => {
    const c = cluster.get()
    const p1 = new Pool({ ...c.config, host: A, max: 1 })
    const p2 = new Pool({ ...c.config, host: A2, max: 1 })
    await p1.query('SELECT 1')
    await p2.query('SELECT 1')
    await until(() => p1.guard.snapshot()[0]?.server !== null && p2.guard.snapshot()[0]?.server !== null, 'both sessions read their server')
    const [r1] = p1.guard.snapshot()
    const [r2] = p2.guard.snapshot()
    assert.ok(r1.server && r2.server)
    assert.equal(r1.server.id, r2.server.id)
    assert.deepEqual([r1.server.address, r2.server.address], [A, A2], 'where the session arrived, as the server saw it')
    // A client its owner holds is asked only when the judge needs it (its address seen leading to two servers,
    // a server fenced: test/kernel/vip.test.ts): on one server at one address its last statement stays its own.
    const standaloneClient = new Client({ ...c.config })
    await standaloneClient.connect()
    await standaloneClient.query('SELECT 42')
    const pid = (standaloneClient as unknown as { processID: number }).processID
    for (const g of standalone.guards()) g.check()
    await new Promise((r) => setTimeout(r, 300)) // an absence: longer than the idle wait (10 ms) and a round trip
    assert.equal(standalone.snapshot().find((r) => r.backendPid === pid)?.server, null)
    const { rows } = await c.primary.query<{ query: string }>('SELECT query FROM pg_stat_activity WHERE pid = $1', [pid])
    assert.equal(rows[0]?.query, 'SELECT 42', "the session's last statement is its owner's")
    await standaloneClient.end()
    await p1.end()
    await p2.end()
  })

  it('where pg_control_system() is revoked: the identity is read without the system identifier', async () => {
    const c = cluster.get()
    await c.primary.query("DO $$ BEGIN CREATE ROLE plain LOGIN PASSWORD 'plain-pw'; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    await c.primary.query('REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC')
    try {
      const pool = new Pool({ ...c.config, user: 'plain', password: 'plain-pw', max: 1 })
      await pool.query('SELECT 1')
      await until(() => pool.guard.snapshot()[0]?.server !== null, 'the session read its server')
      const [row] = pool.guard.snapshot()
      assert.ok(row.server, 'still identified')
      assert.equal(row.server.systemId, null)
      assert.match(row.server.id, /^\?\/\d+\//)
      await pool.end()
    } finally {
      await c.primary.query('GRANT EXECUTE ON FUNCTION pg_control_system() TO PUBLIC')
    }
  })
})
