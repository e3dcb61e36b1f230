/**
 * Without the FFI (koffi missing, or not Linux-x64): no TCP_INFO, so the guard reads /proc/net/tcp every
 * second while queries are in flight and judges from its rows. Slower, but a blackholed host is still found.
 * Keepalive is then set through Node: on Node with the 4-argument setKeepAlive (24.x, 26) idle, interval
 * and count are ours; on older lines only idle. Read back with getsockopt through the test's own koffi.
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { ConnectionEvictedError, WarningCodes, Pool } from '../../src/index'
import { _resetSockoptForTests } from '../../src/kernel/ffi'
import { linuxKernel } from '../../src/kernel/linux'
import { _setKernelForTests } from '../../src/kernel/port'
import { nodeSetsKeepAliveIntervalAndCount, readSocketOptions } from '../../src/socket/harden'
import { blackhole, type KernelFault } from '../../src/testing/kernel-faults'
import { captureWarnings, kernelSkip, useCluster } from '../helpers'

const skip = kernelSkip('test/kernel/fallback.test.ts')
const cluster = useCluster({ primaryHost: '127.0.0.28' })
let fault: KernelFault | undefined
after(async () => {
  await fault?.remove()
  _resetSockoptForTests()
})

describe('kernel checks without the FFI (/proc/net/tcp rows)', { skip }, () => {
  it('in-flight queries to a blackholed host are still evicted with the coded error', async () => {
    const c = cluster.get()
    let pool: Pool | undefined
    const warnings = await captureWarnings(WarningCodes.FFI_UNAVAILABLE, async () => {
      _resetSockoptForTests({ ok: false, reason: 'test: no FFI' })
      pool = new Pool({ ...c.config, max: 4 })
      await Promise.all(Array.from({ length: 4 }, () => pool!.query('SELECT 1')))
    })
    assert.equal(warnings.length, 1)
    fault = await blackhole(c.primary.host, { port: c.port })
    const started = Date.now()
    const results = await Promise.allSettled(Array.from({ length: 3 }, () => pool!.query('SELECT 1')))
    const elapsed = Date.now() - started
    await fault.remove()
    for (const r of results) {
      assert.equal(r.status, 'rejected')
      assert.ok((r as PromiseRejectedResult).reason instanceof ConnectionEvictedError)
    }
    assert.ok(elapsed < 5000, `evicted after ${elapsed} ms without TCP_INFO`)
    console.log(`# without the FFI: in-flight queries evicted after ${elapsed} ms`)
    assert.equal((await pool!.query('SELECT 1 AS n')).rows[0].n, 1)
    await pool!.end()
  })

  it('sockets whose inode is unknown (no /proc/self/fd) are matched to their rows by 4-tuple', async () => {
    const c = cluster.get()
    _resetSockoptForTests({ ok: false, reason: 'test: no FFI' })
    // A kernel whose /proc/self/fd links cannot be read: no socket gets an inode.
    _setKernelForTests({ ...linuxKernel, inodeOf: () => null })
    const pool = new Pool({ ...c.config, max: 3 })
    _setKernelForTests(undefined)
    await Promise.all(Array.from({ length: 3 }, () => pool.query('SELECT 1')))
    assert.ok(pool.guard.snapshot().every((r) => r.inode === null), 'no inode known')
    pool.guard.check({ crossCheck: true })
    assert.ok(pool.guard.snapshot().every((r) => r.kernel?.source === 'proc' && r.kernel.stateName === 'ESTABLISHED'), 'rows found by 4-tuple')
    fault = await blackhole(c.primary.host, { port: c.port })
    const results = await Promise.allSettled([pool.query('SELECT 1'), pool.query('SELECT 1')])
    await fault.remove()
    assert.ok(results.every((r) => r.status === 'rejected' && r.reason instanceof ConnectionEvictedError))
    await pool.end()
  })
})

describe('keepalive without the FFI (read back with getsockopt)', () => {
  it('the fallback socket has the configured interval and count on Node 24+, libuv\'s 1 s x 10 before; never TCP_USER_TIMEOUT', async () => {
    const guard = { keepAliveIdleMs: 3000, keepAliveIntervalMs: 2000, keepAliveCount: 4, userTimeoutMs: 9000 }
    let pool: Pool | undefined
    const warnings = await captureWarnings(WarningCodes.FFI_UNAVAILABLE, async () => {
      _resetSockoptForTests({ ok: false, reason: 'test: no FFI for keepalive' })
      pool = new Pool({ ...cluster.get().config, max: 2, guard })
      await Promise.all([pool.query('SELECT pg_sleep(0.05)'), pool.query('SELECT pg_sleep(0.05)')])
    })
    _resetSockoptForTests() // the real FFI again, only to read back what the guard's fallback set
    const full = nodeSetsKeepAliveIntervalAndCount
    if (Number(process.versions.node.split('.')[0]) < 24) assert.equal(full, false, `Node ${process.version} has no 4-argument setKeepAlive`)
    else if (!full) console.log(`# Node ${process.version} predates the 4-argument setKeepAlive (nodejs/node#63825): only idle is ours`)
    const expected = {
      keepAlive: true,
      keepAliveIdleMs: guard.keepAliveIdleMs,
      keepAliveIntervalMs: full ? guard.keepAliveIntervalMs : 1000,
      keepAliveCount: full ? guard.keepAliveCount : 10,
    }
    const rows = pool!.guard.snapshot()
    assert.equal(rows.length, 2)
    for (const row of rows) {
      assert.deepEqual(readSocketOptions(row.fd!), { ...expected, userTimeoutMs: 0 }, `the kernel's values on Node ${process.version}`)
      // The snapshot reports what was applied, not what was asked: no TCP_USER_TIMEOUT without the FFI.
      assert.deepEqual(row.socketOptions, { via: 'node', ...expected, userTimeoutMs: null, errors: [] })
    }
    assert.equal(warnings.length, 1)
    assert.match(warnings[0]!.message, /TCP_USER_TIMEOUT is not set \(9000 ms asked; it needs the FFI\)/)
    assert.match(warnings[0]!.message, full ? /interval 2000 ms and count 4 through Node/ : /libuv's 1 s x 10; newer Node \(24, 26\) sets them/)
    console.log(`# Node ${process.version} without the FFI: keepalive ${JSON.stringify(expected)}`)
    await pool!.end()
  })
})
