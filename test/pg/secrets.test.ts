// Issue "Every query settles", secrets: the password (given unencoded in a URL, '@' and ':' and all) never
// reaches an output surface — the messages and stacks of every error class the library throws or passes,
// its events, snapshot()/topology()/hosts(), process warnings, metric attributes, util.inspect of the pool
// and its guard, JSON of pool.options, and the CLI. Each surface is provoked on a real server, recorded,
// and grepped at the end for every fragment of the password and its percent-encoding.
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { inspect } from 'node:util'
import pg from 'pg'
import { ConfigError, ConnectionEvictedError, guard, HostFencedError, NoHostAvailableError, Pool, WrongRoleError } from '../../src/index'
import type { HostState } from '../../src/topology/topology'
import { meterProvider } from '../metrics'
import { nextEvent, useCluster } from '../helpers'

const PASSWORD = 'Zebra9@Quokka:Lemur'
/** Each piece on its own, so a password cut at its '@' or ':' (the old host-splitting bug) is caught too. */
const FRAGMENTS = ['Zebra9', 'Quokka', 'Lemur']
const cluster = useCluster({ standby: true, primaryHost: '127.0.8.2', standbyHost: '127.0.8.3', password: PASSWORD })
const DEAD = '127.0.8.9'
const root = join(__dirname, '..', '..')

/** surface -> everything it printed */
const surfaces = new Map<string, string[]>()
function record(surface: string, value: unknown): void {
  const texts: string[] = []
  if (typeof value === 'string') texts.push(value)
  else {
    texts.push(inspect(value, { depth: Infinity, showHidden: false }))
    try {
      texts.push(JSON.stringify(value))
    } catch {
      // circular: inspect covered it
    }
    if (value instanceof Error) texts.push(value.message, String(value.stack), inspect(value, { depth: Infinity }))
  }
  surfaces.set(surface, [...(surfaces.get(surface) ?? []), ...texts])
}
const onWarning = (w: Error & { code?: string }): void => record(`warning ${w.code ?? w.name}`, w)
before(() => {
  process.on('warning', onWarning)
})
after(() => {
  process.off('warning', onWarning)
})

const url = (hosts: string, query = ''): string => `postgresql://${cluster.get().user}:${PASSWORD}@${hosts}/${cluster.get().database}${query}`
const cli = (args: string[]) => spawnSync(process.execPath, [join(root, 'dist', 'cli', 'main.js'), ...args], { cwd: root, encoding: 'utf8', timeout: 30_000 })

describe('the password reaches no output surface', () => {
  it('pg itself takes the unencoded URL (the test is about the same string pg accepts)', async () => {
    const client = new pg.Client({ connectionString: url(`${cluster.get().primary.host}:${cluster.get().port}`) })
    await client.connect()
    await client.end()
  })

  it('a guarded pool: leak, probe, FATAL eviction, warnings, snapshot/topology/hosts, metrics, inspect, options', { timeout: 60_000 }, async () => {
    const c = cluster.get()
    const m = meterProvider()
    const pool = new Pool({
      connectionString: url(`${c.primary.host}:${c.port}`),
      max: 3,
      guard: { meterProvider: m.provider, leakDetectionThresholdMs: 100, probeAfterMs: 200, probeIntervalMs: 500 },
    })
    for (const e of ['evict', 'probe', 'topology', 'leak'] as const) pool.guard.on(e, (ev: unknown) => record(`event ${e}`, ev))
    assert.equal((await pool.query('SELECT 1 AS one')).rows[0].one, 1)

    // leak: held past leakDetectionThresholdMs
    const held = await pool.connect()
    await nextEvent(pool.guard, 'leak')
    held.release()

    // probe: a query with no data for probeAfterMs
    const probed = nextEvent(pool.guard, 'probe')
    await Promise.all([pool.query('SELECT pg_sleep(1.5)'), probed])

    // FATAL eviction of an idle client (pg_terminate_backend), no 'error' listener: a warning
    const victim = await pool.connect()
    const pid = (victim as unknown as { processID: number }).processID
    victim.release()
    const evicted = nextEvent(pool.guard, 'evict')
    await c.primary.query('SELECT pg_terminate_backend($1)', [pid])
    await evicted

    record('snapshot()', pool.guard.snapshot())
    record('topology()', pool.guard.topology())
    record('hosts()', pool.guard.hosts())
    record('stats()', pool.guard.stats())
    record('metrics', (await m.collect()).metrics)
    record('util.inspect(pool)', inspect(pool, { depth: Infinity }))
    record('util.inspect(pool) default depth', inspect(pool))
    record('util.inspect(pool.guard)', inspect(pool.guard, { depth: Infinity }))
    record('JSON.stringify(pool.options)', JSON.stringify(pool.options))
    assert.ok(!Object.keys(pool.options).includes('connectionString'), 'connectionString is not enumerable')
    assert.equal(typeof (pool.options as { connectionString?: unknown }).connectionString, 'string', 'but still readable')
    await pool.end()
    await m.provider.shutdown()
  })

  it('a leak with nobody listening is a PGG_LEAK_DETECTED process warning', { timeout: 30_000 }, async () => {
    const c = cluster.get()
    const pool = new Pool({ connectionString: url(`${c.primary.host}:${c.port}`), guard: { leakDetectionThresholdMs: 100, metrics: 'off' } })
    const warned = new Promise<void>((resolve) => {
      const on = (w: Error & { code?: string }): void => {
        if (w.code !== 'PGG_LEAK_DETECTED') return
        process.off('warning', on)
        resolve()
      }
      process.on('warning', on)
    })
    const held = await pool.connect()
    await warned
    held.release()
    await pool.end()
  })

  it('guard(existingPool) hides the connection string as new Pool does', async () => {
    const c = cluster.get()
    const pool = new pg.Pool({ connectionString: url(`${c.primary.host}:${c.port}`) })
    const g = guard(pool, { metrics: 'off' })
    await pool.query('SELECT 1')
    assert.ok(!Object.keys(pool.options).includes('connectionString'))
    record('guard(existing): util.inspect(pool)', inspect(pool, { depth: Infinity }))
    record('guard(existing): util.inspect(guard)', inspect(g, { depth: Infinity }))
    record('guard(existing): JSON.stringify(pool.options)', JSON.stringify(pool.options))
    record('guard(existing): snapshot()', g.snapshot())
    await pool.end()
  })

  it('WrongRoleError and NoHostAvailableError', { timeout: 30_000 }, async () => {
    const c = cluster.get()
    const one = new Pool({ connectionString: url(`${c.primary.host}:${c.port}`, '?target_session_attrs=standby'), guard: { metrics: 'off' } })
    await assert.rejects(one.query('SELECT 1'), (e: unknown) => {
      assert.ok(e instanceof WrongRoleError, String(e))
      record('WrongRoleError', e)
      return true
    })
    await one.end()
    const two = new Pool({ connectionString: url(`${c.primary.host}:${c.port},${DEAD}:${c.port}`, '?target_session_attrs=standby'), guard: { metrics: 'off' } })
    two.guard.on('topology', (h) => record('event topology', h))
    await assert.rejects(two.query('SELECT 1'), (e: unknown) => {
      assert.ok(e instanceof NoHostAvailableError, String(e))
      assert.equal(e.attempts.length, 2)
      record('NoHostAvailableError', e)
      return true
    })
    record('topology() with a dead host', two.guard.topology())
    await two.end()
  })

  it('ConnectionEvictedError: a query in flight on a name that moved (stale-dns)', { timeout: 30_000 }, async () => {
    const c = cluster.get()
    let answer = c.primary.host
    const pool = new Pool({
      connectionString: url(`db.secret.test:${c.port}`),
      max: 1,
      guard: { lookup: async () => [answer], dnsIntervalMs: 50, metrics: 'off' },
    })
    pool.on('error', (e) => record('pool error event', e))
    pool.guard.on('evict', (e) => record('event evict', e))
    const client = await pool.connect()
    client.on('error', (e) => record('client error event', e))
    const running = client.query('SELECT pg_sleep(30)')
    answer = DEAD
    await assert.rejects(running, (e: unknown) => {
      assert.ok(e instanceof ConnectionEvictedError, String(e))
      assert.equal(e.reason, 'stale-dns')
      record('ConnectionEvictedError', e)
      return true
    })
    client.release(true)
    await pool.end()
  })

  it('ConfigError: from a URL, from options, from the lookup hook', async () => {
    const c = cluster.get()
    for (const make of [
      () => new Pool({ connectionString: url(`${c.primary.host}:bad`) }),
      () => new Pool({ connectionString: url(`${c.primary.host}:${c.port},`) }),
      () => new Pool({ connectionString: url(`${c.primary.host}:${c.port}`, '?target_session_attrs=writable') }),
      () => new Pool({ connectionString: url(`${c.primary.host}:${c.port}`), guard: { userTimeoutMs: 1e10 } }),
    ]) {
      assert.throws(make, (e: unknown) => {
        assert.ok(e instanceof ConfigError, String(e))
        record('ConfigError', e)
        return true
      })
    }
    const pool = new Pool({ connectionString: url(`db.secret.test:${c.port}`), guard: { lookup: async () => 'x' as never, dnsIntervalMs: 0, metrics: 'off' } })
    await assert.rejects(pool.query('SELECT 1'), (e: unknown) => {
      assert.ok(e instanceof ConfigError)
      record('ConfigError (lookup)', e)
      return true
    })
    await pool.end()
  })

  it('the CLI: doctor <url> and scan --json, with a process holding the URL on its command line', { timeout: 60_000 }, async () => {
    const c = cluster.get()
    const u = url(`${c.primary.host}:${c.port}`)
    const script = `
      const pg = require(${JSON.stringify(require.resolve('pg'))})
      const c = new pg.Client(process.argv[1]); c.connect().then(() => process.stdout.write('ready\\n'), (e) => { console.error(e.message); process.exit(1) })
      process.stdin.on('end', () => process.exit(0)).resume()`
    const child = spawn(process.execPath, ['-e', script, u], { stdio: ['pipe', 'pipe', 'inherit'] })
    try {
      const [line] = (await once(child.stdout, 'data')) as [Buffer]
      assert.equal(String(line), 'ready\n')
      for (const args of [['doctor', u], ['doctor', u, '--json'], ['doctor', url(`${c.primary.host}:${c.port},${DEAD}:${c.port}`)], ['scan', '--port', String(c.port), '--json'], ['scan', '--port', String(c.port)]]) {
        const res = cli(args)
        assert.ok(res.stdout.length + res.stderr.length > 0, args[0])
        record(`cli ${args[0]}${args.includes('--json') ? ' --json' : ''}`, res.stdout + res.stderr)
      }
      const scanned = JSON.parse(cli(['scan', '--port', String(c.port), '--json']).stdout) as { rows: { pid: number | null }[] }
      assert.ok(scanned.rows.some((r) => r.pid === child.pid), 'scan sees the holder')
    } finally {
      child.stdin!.end()
      await once(child, 'exit')
    }
  })

  // Last before the grep: it leaves the cluster split-brained.
  it('HostFencedError: split-brain, the stale primary is fenced and a connection to it refused', { timeout: 60_000 }, async () => {
    const c = cluster.get()
    const [a, b] = c.servers
    // No standby left after the promotion: b is tried first and is the wrong role, then a, which is fenced.
    const pool = new Pool({ connectionString: url(`${a.host}:${a.port},${b.host}:${b.port}`), guard: { targetSessionAttrs: 'standby', topologyIntervalMs: 100, metrics: 'off' } })
    pool.on('error', (e) => record('pool error event', e))
    pool.guard.on('evict', (e) => record('event evict', e))
    const fenced = new Promise<HostState>((resolve) => pool.guard.on('topology', (h: HostState) => {
      record('event topology', h)
      if (h.fenced !== null) resolve(h)
    }))
    await c.promote(b)
    assert.equal((await fenced).key, `${a.host}:${a.port}`)
    await assert.rejects(pool.query('SELECT 1'), (e: unknown) => {
      assert.ok(e instanceof NoHostAvailableError, String(e))
      assert.deepEqual(e.attempts.map((x) => x.code), ['PGG_WRONG_ROLE', 'PGG_HOST_FENCED'])
      assert.ok(e.cause instanceof HostFencedError)
      record('NoHostAvailableError (fenced)', e)
      record('HostFencedError', e.cause)
      return true
    })
    record('topology() split-brain', pool.guard.topology())
    await pool.end()
  })

  it('no surface printed any fragment of the password, encoded or not', () => {
    const expected = [
      'event leak', 'event probe', 'event evict', 'warning PGG_IDLE_CLIENT_ERROR', 'warning PGG_LEAK_DETECTED', 'snapshot()', 'topology()', 'hosts()', 'metrics',
      'util.inspect(pool)', 'util.inspect(pool.guard)', 'JSON.stringify(pool.options)', 'guard(existing): util.inspect(pool)',
      'WrongRoleError', 'NoHostAvailableError', 'HostFencedError', 'ConnectionEvictedError', 'ConfigError', 'ConfigError (lookup)', 'cli doctor', 'cli doctor --json', 'cli scan', 'cli scan --json',
    ]
    for (const s of expected) assert.ok(surfaces.has(s), `surface '${s}' was provoked (have: ${[...surfaces.keys()].join(', ')})`)
    const leaks: string[] = []
    // The grep itself works: the URL every pool was given holds every fragment.
    for (const f of FRAGMENTS) assert.ok(url('h').includes(f))
    for (const [surface, texts] of surfaces) {
      for (const text of texts) {
        for (const f of [...FRAGMENTS, encodeURIComponent(PASSWORD)]) {
          const i = text.indexOf(f)
          if (i >= 0) leaks.push(`${surface}: …${text.slice(Math.max(0, i - 80), i + 40)}…`)
        }
      }
    }
    assert.deepEqual(leaks, [], `the password leaked:\n${leaks.join('\n')}`)
    console.log(`# ${surfaces.size} surfaces checked: ${[...surfaces.keys()].join(', ')}`)
  })
})
