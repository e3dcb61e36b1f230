/**
 * The checkout check on real sockets. An idle client whose server closed it while the event loop was busy
 * (the FIN is in the kernel, pg has not read it: CLOSE_WAIT) is handed out by pg-pool on the next tick,
 * before any I/O callback runs (the client was idle longer than checkoutCheckIdleMs, 100 ms). With the check, the caller's query goes to another connection and an evict
 * event names the check; without it, the caller gets the dead socket.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type EvictionEvent, Pool } from '../../src/index'
import { linuxKernel } from '../../src/kernel/linux'
import { TcpState } from '../../src/kernel/tcp-info'
import { useCluster } from '../helpers'

const cluster = useCluster({ primaryHost: '127.0.23.5' })

/**
 * Two idle clients; the one pg-pool hands out next is closed by its server (idle_session_timeout) while
 * this function blocks the event loop until the kernel shows CLOSE_WAIT; then `use` runs, still blocked.
 */
async function closedWhileBusy<T>(pool: Pool, use: () => Promise<T>): Promise<{ result: Promise<T>; pid: number }> {
  const [other, doomed] = [await pool.connect(), await pool.connect()]
  await doomed.query('SET idle_session_timeout = 150')
  const pid = (doomed as unknown as { processID: number }).processID
  other.release()
  doomed.release() // released last: handed out first (pg-pool's idle list is a stack)
  const fd = pool.guard.snapshot().find((r) => r.backendPid === pid)!.fd!
  const deadline = Date.now() + 10_000
  const wait = new Int32Array(new SharedArrayBuffer(4))
  // A busy event loop: the kernel is looked at, pg gets no I/O callback.
  while (linuxKernel.sample(fd)?.state !== TcpState.CLOSE_WAIT) {
    if (Date.now() > deadline) throw new Error('the server did not close the idle session')
    Atomics.wait(wait, 0, 0, 5)
  }
  return { result: use(), pid }
}

describe('checkout check (an idle socket the kernel distrusts is never handed out)', () => {
  it('CLOSE_WAIT: the caller\'s query succeeds on another connection; the evict event names the check', async (t) => {
    const why = linuxKernel.samplingUnavailable()
    if (why) return t.skip(`no TCP_INFO here: ${why}`)
    const pool = new Pool({ ...cluster.get().config, max: 2 })
    pool.on('error', () => {})
    const evictions: EvictionEvent[] = []
    pool.guard.on('evict', (e) => evictions.push(e))
    const { result, pid } = await closedWhileBusy(pool, () => pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid'))
    const { rows } = await result
    assert.notEqual(rows[0].pid, pid, 'served by the other connection')
    assert.equal(evictions.length, 1)
    const [e] = evictions
    assert.equal(e.reason, 'checkout-distrusted')
    assert.equal(e.backendPid, pid)
    assert.equal(e.inUse, false)
    assert.equal(e.evidence, 'checkout check: state CLOSE_WAIT: the server closed it')
    assert.equal(pool.totalCount, 1)
    await pool.end()
  })

  it('with checkoutCheck off, the same caller gets the dead socket (what the check prevents)', async (t) => {
    const why = linuxKernel.samplingUnavailable()
    if (why) return t.skip(`no TCP_INFO here: ${why}`)
    const pool = new Pool({ ...cluster.get().config, max: 2, guard: { checkoutCheck: false } })
    pool.on('error', () => {})
    const { result } = await closedWhileBusy(pool, () => pool.query('SELECT 1').then(() => null, (err: Error) => err))
    const err = await result
    assert.ok(err instanceof Error, 'the query failed on the closed socket')
    console.log(`# checkoutCheck off: the caller got "${err.message}"`)
    await pool.end()
  })

  it('the glance the check takes reads the same fields as a full TCP_INFO sample', async (t) => {
    const why = linuxKernel.samplingUnavailable()
    if (why) return t.skip(`no TCP_INFO here: ${why}`)
    const pool = new Pool({ ...cluster.get().config, max: 1 })
    await pool.query('SELECT 1')
    const fd = pool.guard.snapshot()[0].fd!
    const full = linuxKernel.sample(fd)!
    const glance = linuxKernel.glance(fd)!
    assert.deepEqual(Object.keys(glance).sort(), ['msSinceAck', 'msSinceDataRecv', 'outstanding', 'probes', 'retransmits', 'rttMs', 'state'])
    for (const k of ['state', 'outstanding', 'retransmits', 'probes', 'rttMs'] as const) assert.equal(glance[k], full[k], k)
    for (const k of ['msSinceAck', 'msSinceDataRecv'] as const) assert.ok(Math.abs(glance[k]! - full[k]!) < 1000, k)
    await pool.end()
  })

  it('a client that was idle with no trouble is handed out as before (no eviction)', async () => {
    const pool = new Pool({ ...cluster.get().config, max: 2 })
    const evictions: EvictionEvent[] = []
    pool.guard.on('evict', (e) => evictions.push(e))
    const c = await pool.connect()
    const pid = (c as unknown as { processID: number }).processID
    c.release()
    const { rows } = await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
    assert.equal(rows[0].pid, pid)
    assert.deepEqual(evictions, [])
    await pool.end()
  })
})
