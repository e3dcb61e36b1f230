/**
 * Socket hardening, proven by reading the options back from the kernel with getsockopt on real pooled
 * sockets (plain TCP, TLS and IPv6) — never from our own config.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import pg from 'pg'
import { WarningCodes, GUARD_DEFAULTS, Pool } from '../../src/index'
import { _resetSockoptForTests } from '../../src/kernel/ffi'
import { nodeSetsKeepAliveIntervalAndCount, readSocketOptions } from '../../src/socket/harden'
import { fdOf, rawSocketOf } from '../../src/pg/internals'
import { captureWarnings, useCluster } from '../helpers'

const cluster = useCluster({ primaryHost: '127.0.0.4', tls: true, ipv6: true })

const defaults = {
  keepAlive: true,
  keepAliveIdleMs: GUARD_DEFAULTS.keepAliveIdleMs,
  keepAliveIntervalMs: GUARD_DEFAULTS.keepAliveIntervalMs,
  keepAliveCount: GUARD_DEFAULTS.keepAliveCount,
  userTimeoutMs: GUARD_DEFAULTS.userTimeoutMs,
}

/** Checks out `n` clients at once so the pool opens `n` sockets; returns what the kernel says of each. */
async function kernelOptions(pool: pg.Pool, n: number) {
  const clients = await Promise.all(Array.from({ length: n }, () => pool.connect()))
  const out = clients.map((c) => readSocketOptions(fdOf(rawSocketOf(c))!))
  for (const c of clients) c.release()
  return out
}

describe('socket hardening (getsockopt read-back)', () => {
  it('every pooled socket gets keepalive idle, interval, count and TCP_USER_TIMEOUT from the defaults table', async () => {
    const pool = new Pool({ ...cluster.get().config, max: 3 })
    assert.deepEqual(await kernelOptions(pool, 3), [defaults, defaults, defaults])
    for (const row of pool.guard.snapshot()) {
      assert.equal(row.socketOptions?.via, 'ffi')
      assert.deepEqual(row.socketOptions?.errors, [])
    }
    await pool.end()
  })

  it("pg's keepAlive: true with delay 0 leaves the OS default of 7200 s; the guard never does", async () => {
    const plain = new pg.Pool({ ...cluster.get().config, keepAlive: true })
    const [osDefault] = await kernelOptions(plain, 1)
    await plain.end()
    const osIdleMs = Number(readFileSync('/proc/sys/net/ipv4/tcp_keepalive_time', 'utf8')) * 1000 // 7200 s unless tuned
    assert.equal(osDefault!.keepAliveIdleMs, osIdleMs, 'what pg.Pool leaves: net.ipv4.tcp_keepalive_time')
    const guarded = new Pool({ ...cluster.get().config, keepAlive: true })
    const [ours] = await kernelOptions(guarded, 1)
    await guarded.end()
    assert.deepEqual(ours, defaults)
  })

  it('guard options override every value', async () => {
    const guard = { keepAliveIdleMs: 3000, keepAliveIntervalMs: 2000, keepAliveCount: 4, userTimeoutMs: 9000 }
    const pool = new Pool({ ...cluster.get().config, guard })
    const [got] = await kernelOptions(pool, 1)
    await pool.end()
    assert.deepEqual(got, { keepAlive: true, ...guard })
  })

  it('TLS connections are hardened on the same fd', async () => {
    const pool = new Pool({ ...cluster.get().config, ssl: { rejectUnauthorized: false } })
    const client = await pool.connect()
    const { rows } = await client.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')
    assert.equal(rows[0].ssl, true, 'the connection really is TLS')
    const [row] = pool.guard.snapshot()
    assert.equal(readSocketOptions(row.fd!)?.keepAliveIdleMs, defaults.keepAliveIdleMs)
    assert.deepEqual(readSocketOptions(row.fd!), defaults)
    assert.equal(row.socketOptions?.via, 'ffi')
    client.release()
    await pool.end()
  })

  it('IPv6 (::1) sockets are hardened and recorded as IPv6', async () => {
    const pool = new Pool({ ...cluster.get().config, host: '::1' })
    const [got] = await kernelOptions(pool, 1)
    const [row] = pool.guard.snapshot()
    await pool.end()
    assert.deepEqual(got, defaults)
    assert.equal(row.family, 'IPv6')
    assert.equal(row.remoteAddress, '::1')
  })

  it('without the FFI: keepalive still set through Node, and one coded warning says what is not', async () => {
    _resetSockoptForTests({ ok: false, reason: 'test: koffi disabled' })
    let pools: Pool[] = []
    const warnings = await captureWarnings(WarningCodes.FFI_UNAVAILABLE, async () => {
      pools = [new Pool(cluster.get().config), new Pool(cluster.get().config)]
      for (const p of pools) await p.query('SELECT 1')
    })
    _resetSockoptForTests() // the real FFI again, to read back what Node alone managed to set
    const [row] = pools[0].guard.snapshot()
    assert.equal(warnings.length, 1, 'warned once, not per pool or socket')
    assert.match(warnings[0].message, /test: koffi disabled.*TCP_USER_TIMEOUT is not set/)
    assert.equal(row.socketOptions?.via, 'node')
    assert.equal(row.socketOptions?.userTimeoutMs, null)
    // Node 24/26: setKeepAlive(true, idle, interval, count) sets three of the four. Older lines (libuv 1.46):
    // setKeepAlive(true, ms) sets the idle time and forces a 1 s interval and 10 probes.
    const [interval, count] = nodeSetsKeepAliveIntervalAndCount ? [defaults.keepAliveIntervalMs, defaults.keepAliveCount] : [1000, 10]
    const applied = { keepAlive: true, keepAliveIdleMs: defaults.keepAliveIdleMs, keepAliveIntervalMs: interval, keepAliveCount: count }
    assert.deepEqual(readSocketOptions(row.fd!), { ...applied, userTimeoutMs: 0 })
    assert.deepEqual(row.socketOptions, { via: 'node', ...applied, userTimeoutMs: null, errors: [] }, 'the snapshot says what the kernel has')
    for (const p of pools) await p.end()
  })
})
