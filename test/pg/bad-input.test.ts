// Issue "Every query settles", on a real server: the largest values the option bounds admit are taken by
// the kernel and by Node's timers; the connection strings pg accepts (an unencoded '@' and ':' in the
// password, several hosts, a Unix socket directory) reach the server as pg would reach it; and a broken
// lookup hook makes the query reject with a coded error instead of hanging, without wedging the pool.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import pg from 'pg'
import { ConfigError, ErrorCodes, NoHostAvailableError, Pool } from '../../src/index'
import { readSocketOptions } from '../../src/socket/harden'
import { useCluster } from '../helpers'

const cluster = useCluster({ primaryHost: '127.0.8.4' })
/** Nothing listens here: a connection is refused at once. */
const DEAD = '127.0.8.9'
const APP_PASSWORD = 'Secret-77@x:y!$*'

/** Every process warning while `fn` runs. */
async function warningsDuring(fn: () => Promise<void>): Promise<Error[]> {
  const seen: Error[] = []
  const listener = (w: Error): void => {
    seen.push(w)
  }
  process.on('warning', listener)
  try {
    await fn()
  } finally {
    process.off('warning', listener)
  }
  return seen
}

describe('the bounds are what Linux and Node take', () => {
  it('socket options at their largest admitted values are set and read back, with no warning', async () => {
    const c = cluster.get()
    const opts = { userTimeoutMs: 2 ** 31 - 1, keepAliveIdleMs: 32_767_000, keepAliveIntervalMs: 32_767_000, keepAliveCount: 127 }
    const pool = new Pool({ ...c.config, max: 1, guard: { ...opts, metrics: 'off' } })
    const warnings = await warningsDuring(async () => {
      assert.equal((await pool.query('SELECT 1 AS one')).rows[0].one, 1)
    })
    assert.deepEqual(warnings.filter((w) => /PGG_SOCKET_OPTION_FAILED/.test(String((w as { code?: string }).code))), [])
    const [row] = pool.guard.snapshot()
    const read = readSocketOptions(row.fd!)
    if (read) {
      assert.equal(read.userTimeoutMs, opts.userTimeoutMs)
      assert.equal(read.keepAliveIdleMs, opts.keepAliveIdleMs)
      assert.equal(read.keepAliveIntervalMs, opts.keepAliveIntervalMs)
      assert.equal(read.keepAliveCount, opts.keepAliveCount)
    }
    await pool.end()
  })

  it('every timer at 2^31-1 ms: queries run and Node raises no TimeoutOverflowWarning', async () => {
    const c = cluster.get()
    const max = 2 ** 31 - 1
    const timers = {
      checkIntervalMs: max, topologyIntervalMs: max, probeTimeoutMs: max, connectAttemptTimeoutMs: max, probeAfterMs: max, probeIntervalMs: max,
      stallMs: max, stallHardLimitMs: max, graceMs: max, leakDetectionThresholdMs: max, procScanIntervalMs: max, dnsIntervalMs: max,
    }
    const warnings = await warningsDuring(async () => {
      const pool = new Pool({ ...c.config, host: `${c.primary.host},${DEAD}`, max: 2, guard: { ...timers, metrics: 'off' } })
      const client = await pool.connect()
      await client.query('SELECT pg_sleep(0.3)')
      client.release()
      await pool.end()
    })
    assert.deepEqual(warnings.filter((w) => w.name === 'TimeoutOverflowWarning').map((w) => w.message), [])
  })
})

describe('connection strings pg accepts reach the server as pg reaches it', () => {
  it("an unencoded '@' and ':' in the password: one host, and several", async () => {
    const c = cluster.get()
    await c.primary.query(`CREATE ROLE app LOGIN PASSWORD '${APP_PASSWORD}'`)
    const one = `postgresql://app:${APP_PASSWORD}@${c.primary.host}:${c.port}/${c.database}`
    // pg itself takes it (WHATWG URL splits at the last '@').
    const plain = new pg.Client({ connectionString: one })
    await plain.connect()
    assert.equal((await plain.query('SELECT current_user AS u')).rows[0].u, 'app')
    await plain.end()

    const pool = new Pool({ connectionString: one, guard: { metrics: 'off' } })
    assert.equal((await pool.query('SELECT current_user AS u')).rows[0].u, 'app')
    assert.equal(pool.guard.poolName, `${c.primary.host}:${c.port}/${c.database}`)
    assert.deepEqual(pool.guard.topology().hosts.map((h) => h.key), [`${c.primary.host}:${c.port}`])
    await pool.end()

    const several = `postgresql://app:${APP_PASSWORD}@${DEAD}:${c.port},${c.primary.host}:${c.port}/${c.database}?target_session_attrs=read-write`
    const multi = new Pool({ connectionString: several, guard: { metrics: 'off' } })
    const { rows } = await multi.query('SELECT current_user AS u, host(inet_server_addr()) AS ip')
    assert.deepEqual(rows[0], { u: 'app', ip: c.primary.host })
    assert.deepEqual(multi.guard.topology().hosts.map((h) => h.key), [`${DEAD}:${c.port}`, `${c.primary.host}:${c.port}`])
    assert.equal(multi.guard.poolName, `${DEAD}:${c.port},${c.primary.host}:${c.port}/${c.database}`)
    await multi.end()
  })

  it('a Unix socket directory given as ?host= is the host pg connects to', async () => {
    const c = cluster.get()
    const url = `postgresql:///${c.database}?host=${encodeURIComponent(c.primary.socketDir)}&port=${c.port}&user=${c.user}`
    const pool = new Pool({ connectionString: url, guard: { metrics: 'off' } })
    assert.equal((await pool.query('SELECT 1 AS one')).rows[0].one, 1)
    assert.deepEqual(pool.guard.topology().hosts.map((h) => h.spec), [{ host: c.primary.socketDir, port: c.port }])
    assert.equal(pool.guard.snapshot()[0]?.transport, 'unix')
    await pool.end()
  })
})

describe('a broken lookup hook: the query settles with a coded error, and the pool recovers', () => {
  it('a non-array answer, then a non-Error rejection, then a good answer', { timeout: 30_000 }, async () => {
    const c = cluster.get()
    let answer: () => unknown = async () => c.primary.host
    const pool = new Pool({ ...c.config, host: 'db.lookup.test', max: 2, guard: { lookup: () => answer() as Promise<string[]>, dnsIntervalMs: 0, metrics: 'off' } })
    await assert.rejects(pool.query('SELECT 1'), (e: unknown) => e instanceof ConfigError && e.code === ErrorCodes.CONFIG_INVALID && /resolved to "127\.0\.8\.4"/.test(e.message))
    answer = () => Promise.reject(null)
    await assert.rejects(pool.query('SELECT 1'), (e: unknown) => e instanceof ConfigError && /rejected for db\.lookup\.test with null, not an Error/.test(e.message))
    assert.equal(pool.totalCount, 0)
    assert.equal(pool.waitingCount, 0)
    answer = async () => [c.primary.host]
    assert.equal((await pool.query('SELECT 1 AS one')).rows[0].one, 1)
    assert.equal(pool.guard.snapshot()[0].remoteAddress, c.primary.host)
    await pool.end()
  })

  it('several hosts: a host whose lookup is broken is one failed attempt, named with its code', { timeout: 30_000 }, async () => {
    const c = cluster.get()
    const lookup = async (name: string): Promise<string[]> => (name === 'good.lookup.test' ? [c.primary.host] : ('nope' as never))
    const pool = new Pool({ ...c.config, host: 'bad.lookup.test,good.lookup.test', max: 2, guard: { lookup, dnsIntervalMs: 0, topologyIntervalMs: 0, metrics: 'off' } })
    assert.equal((await pool.query('SELECT host(inet_server_addr()) AS ip')).rows[0].ip, c.primary.host)
    await pool.end()

    const none = new Pool({ ...c.config, host: 'bad.lookup.test,worse.lookup.test', guard: { lookup, dnsIntervalMs: 0, topologyIntervalMs: 0, metrics: 'off' } })
    await assert.rejects(none.query('SELECT 1'), (e: unknown) => {
      assert.ok(e instanceof NoHostAvailableError, String(e))
      assert.deepEqual(e.attempts.map((a) => [a.host, a.code]), [['bad.lookup.test', 'PGG_CONFIG_INVALID'], ['worse.lookup.test', 'PGG_CONFIG_INVALID']])
      return true
    })
    await none.end()
  })
})
