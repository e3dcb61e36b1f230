/**
 * The per-socket registry: snapshot() rows must match the kernel's own view of the same sockets
 * (/proc/net/tcp 4-tuple and inode) and the server's (pg_stat_activity pid and client port).
 */
import assert from 'node:assert/strict'
import { inspect } from 'node:util'
import { describe, it } from 'node:test'
import { Pool } from '../../src/index'
import { normalizeAddress } from '../../src/kernel/proc-net-tcp'
import { readTcpTable, socketInodesOf } from '../../src/kernel/reader'
import { TcpState } from '../../src/kernel/tcp-info'
import { useCluster } from '../helpers'

const cluster = useCluster({ primaryHost: '127.0.0.5' })

describe('registry and snapshot()', () => {
  it('rows match the kernel (4-tuple, inode, ESTABLISHED) and the server (backend pid, client port)', async () => {
    const { host, port } = cluster.get().primary
    const pool = new Pool({ ...cluster.get().config, max: 3 })
    const clients = await Promise.all([pool.connect(), pool.connect(), pool.connect()])
    clients[2].release()
    const rows = pool.guard.snapshot()
    assert.equal(rows.length, 3)

    const kernel = readTcpTable()
    const mine = socketInodesOf('self')
    const server = await cluster.get().primary.query<{ pid: number; client_port: number }>(
      "SELECT pid, client_port FROM pg_stat_activity WHERE backend_type = 'client backend'"
    )
    for (const row of rows) {
      assert.equal(row.configuredHost, host)
      assert.equal(row.configuredPort, port)
      assert.ok(row.inode && mine.has(row.inode), 'the inode is one of this process\'s fds')
      const k = kernel.rows.find((r) => r.inode === row.inode)
      assert.ok(k, `inode ${row.inode} is in /proc/net/tcp`)
      assert.equal(k.state, TcpState.ESTABLISHED)
      assert.deepEqual(
        [normalizeAddress(k.localAddress), k.localPort, normalizeAddress(k.remoteAddress), k.remotePort],
        [normalizeAddress(row.localAddress!), row.localPort, normalizeAddress(row.remoteAddress!), row.remotePort]
      )
      assert.equal(row.remoteAddress, host)
      assert.equal(row.remotePort, port)
      const backend = server.rows.find((s) => s.client_port === row.localPort)
      assert.ok(backend, `the server sees a backend for client port ${row.localPort}`)
      assert.equal(row.backendPid, backend.pid)
      assert.ok(row.fd !== null && row.fd > 2)
    }
    assert.deepEqual(rows.map((r) => r.state).sort(), ['idle', 'in-use', 'in-use'])
    assert.ok(rows.every((r) => r.uses === 1 && r.lastAcquiredAt !== null && r.createdAt <= r.lastAcquiredAt))

    clients[0].release()
    clients[1].release(true)
    await new Promise((r) => pool.once('remove', r))
    assert.deepEqual(pool.guard.snapshot().map((r) => r.state).sort(), ['idle', 'idle'])
    await pool.end()
    assert.deepEqual(pool.guard.snapshot(), [], 'ended pool: no rows')
  })

  it('holds no secrets: no password in snapshot rows or in an inspected guard', async () => {
    const cfg = cluster.get().config
    const pool = new Pool({ ...cfg, connectionString: cluster.get().primary.connectionString })
    await pool.query('SELECT 1')
    const text = [
      JSON.stringify(pool.guard.snapshot()),
      inspect(pool.guard, { depth: 8 }),
      inspect(pool.guard.snapshot(), { depth: 8 }),
      inspect(pool, { depth: 2 }),
      JSON.stringify(pool.options),
    ].join('\n')
    assert.ok(!text.includes(String(cfg.password)), 'password leaked')
    assert.equal(pool.options.connectionString, cluster.get().primary.connectionString, 'still readable')
    await pool.end()
  })
})
