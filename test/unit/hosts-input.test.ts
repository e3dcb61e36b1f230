// Issue "Every query settles": bad host lists, connection strings and resolver answers fail at construction
// with a coded ConfigError (or, for a resolver's runtime answer, a coded error the query rejects with),
// never later as an uncoded TypeError, an unhandled rejection or a hung query. And connection strings are
// parsed exactly as pg parses them. No PostgreSQL: nothing here reaches a server.
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import pg from 'pg'
import { ConfigError, ErrorCodes, guard, Pool } from '../../src/index'
import { parseConnectionString } from '../../src/topology/hosts'
import { parseHosts } from '../../src/topology/hosts'

const unhandled: unknown[] = []
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason)
}
process.on('unhandledRejection', onUnhandled)
after(() => {
  process.off('unhandledRejection', onUnhandled)
  assert.deepEqual(unhandled, [], 'no unhandled rejection in this file')
})

const isConfigError = (message: RegExp) => (err: unknown): boolean => {
  assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`)
  assert.equal(err.code, ErrorCodes.CONFIG_INVALID)
  assert.match(err.message, message)
  return true
}

describe('host lists are checked at construction', () => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ host: ',' }, /host "," has an empty entry \(position 1 of 2\)/],
    [{ host: 'a,,b' }, /host "a,,b" has an empty entry \(position 2 of 3\)/],
    [{ host: 'a, ' }, /host "a, " has an empty entry \(position 2 of 2\)/],
    [{ host: 42 }, /host must be a string or an array of strings, got the number 42/],
    [{ host: ['a', 42] }, /host\[1\] must be a string, got number/],
    [{ host: ['a', ''] }, /has an empty entry \(position 2 of 2\)/],
    [{ host: { name: 'a' } }, /host must be a string or an array of strings, got object/],
    [{ host: 'a', port: {} }, /port must be a string, a number or an array, got object/],
    [{ host: 'a,b', port: '5432,' }, /invalid port ""/],
    [{ connectionString: 12345 }, /connectionString must be a string, got number/],
    [{ connectionString: { host: 'a' } }, /connectionString must be a string, got object/],
    [{ connectionString: 'postgresql://a,,b/db' }, /host list has an empty entry \(position 2 of 3\)/],
    [{ connectionString: 'postgresql://u:pw@a:1,/db' }, /host list has an empty entry \(position 2 of 2\)/],
    [{ connectionString: 'postgresql://a:1,b:port/db' }, /cannot parse host 'b:port' in the connection string/],
    [{ connectionString: 'postgresql://a:99999/db' }, /cannot parse the connection string: Invalid URL/],
  ]
  for (const [config, message] of bad) {
    it(`new Pool(${JSON.stringify(config)}) throws ConfigError`, () => {
      assert.throws(() => new Pool(config as never), isConfigError(message))
    })
  }

  it('guard: [] and a non-object config are ConfigErrors', () => {
    assert.throws(() => new Pool({ host: '127.0.0.1', guard: [] as never }), isConfigError(/guard must be an object, got an array/))
    assert.throws(() => new Pool('postgresql://a/db' as never), isConfigError(/pool config must be an object, got string/))
    assert.throws(() => new Pool([] as never), isConfigError(/pool config must be an object, got an array/))
  })

  it('guard(existingPool, bad) throws before claiming the pool: a corrected call still works', async () => {
    const pool = new pg.Pool({ host: '127.0.0.1' })
    assert.throws(() => guard(pool, [] as never), isConfigError(/guard must be an object, got an array/))
    assert.throws(() => guard(pool, JSON.parse('{"__proto__": {}}')), isConfigError(/unknown guard option '__proto__'/))
    assert.throws(() => guard(pool, { userTimeoutMs: 1e10 }), isConfigError(/userTimeoutMs must be at most 2147483647/))
    const g = guard(pool)
    assert.ok(g.poolName)
    await pool.end()
    const bad = new pg.Pool({ host: 'a,,b' } as never)
    assert.throws(() => guard(bad), isConfigError(/host "a,,b" has an empty entry/))
    await bad.end()
    assert.throws(() => guard({ connect() {} } as never), isConfigError(/guard\(\) needs a pg\.Pool instance/))
    assert.throws(() => guard(null as never), isConfigError(/guard\(\) needs a pg\.Pool instance/))
  })

  it('a valid list is still taken as before', () => {
    assert.deepEqual(parseHosts({ host: ['a', 'b'], port: ['1', 2] }).hosts, [{ host: 'a', port: 1 }, { host: 'b', port: 2 }])
    assert.deepEqual(parseHosts({ host: '', connectionString: '' }).hosts, [])
    assert.deepEqual(parseHosts({ host: null, connectionString: null }).hosts, [])
  })
})

/** What pg itself makes of a connection string: the config pg-connection-string returns, and the Client's host/port. */
function asPg(cs: string): { config: Record<string, unknown>; host: string; port: number } {
  const c = new pg.Client({ connectionString: cs })
  return { config: parseConnectionString(cs), host: c.host, port: c.port }
}

describe('connection strings parse exactly as pg parses them', () => {
  const PASSWORDS = ['Secret-77@x', 'a@b@c', 'p:ss:word', "!$&'()*+;=~", 'p%40ss%3A%2F', 'sp ce', '100%', 'ünï']
  for (const pw of PASSWORDS) {
    it(`password ${JSON.stringify(pw)}: one host is exactly pg's, with the password as pg reads it`, () => {
      const cs = `postgresql://app:${pw}@127.0.0.50:5432/db?sslmode=disable&application_name=x`
      const pgView = asPg(cs)
      const ours = parseHosts({ connectionString: cs })
      assert.deepEqual(ours.hosts, [{ host: pgView.host, port: pgView.port }])
      assert.deepEqual(ours.hosts, [{ host: '127.0.0.50', port: 5432 }])
      assert.deepEqual(parseConnectionString(ours.connectionString!), pgView.config)
    })
    it(`password ${JSON.stringify(pw)}: several hosts split after the last '@', the rest parsed by pg`, () => {
      const cs = `postgresql://app:${pw}@127.0.0.50:5432,db-b:5433,[::1]:6000/db?target_session_attrs=read-write&load_balance_hosts=random`
      const ours = parseHosts({ connectionString: cs })
      assert.deepEqual(ours.hosts, [{ host: '127.0.0.50', port: 5432 }, { host: 'db-b', port: 5433 }, { host: '::1', port: 6000 }])
      const single = `postgresql://app:${pw}@127.0.0.50:5432/db?target_session_attrs=read-write&load_balance_hosts=random`
      assert.equal(ours.connectionString, single)
      assert.deepEqual(parseConnectionString(ours.connectionString!), asPg(single).config)
      assert.equal(ours.targetSessionAttrs, 'read-write')
      assert.equal(ours.loadBalanceHosts, 'random')
    })
  }

  it("an unencoded '@' in the password stays out of the pool name (a metric attribute)", async () => {
    const pool = new Pool({ connectionString: 'postgresql://app:Secret-77@x@127.0.0.50:5432/db', guard: { metrics: 'off' } })
    try {
      assert.equal(pool.guard.poolName, '127.0.0.50:5432/db')
      assert.deepEqual(pool.guard.topology().hosts.map((h) => h.key), ['127.0.0.50:5432'])
      assert.doesNotMatch(JSON.stringify(pool.guard.topology()), /Secret|77/)
    } finally {
      await pool.end()
    }
  })

  it('IPv6, a Unix socket directory, parameters and their percent-encoding', () => {
    const cases: [string, { host: string; port: number }[]][] = [
      ['postgresql://app:pw@[::1]:5432/db', [{ host: '::1', port: 5432 }]],
      ['postgresql://[::1]/db', [{ host: '::1', port: 5432 }]],
      ['postgresql:///db?host=/var/run/postgresql', [{ host: '/var/run/postgresql', port: 5432 }]],
      ['postgresql://%2Fvar%2Frun%2Fpostgresql/db', [{ host: '/var/run/postgresql', port: 5432 }]],
      ['postgresql://localhost/db?host=/tmp&port=6000', [{ host: '/tmp', port: 6000 }]],
      ['postgres://h/db', [{ host: 'h', port: 5432 }]],
    ]
    for (const [cs, hosts] of cases) {
      const pgView = asPg(cs)
      assert.deepEqual(parseHosts({ connectionString: cs }).hosts, hosts, cs)
      assert.deepEqual(hosts, [{ host: pgView.host, port: pgView.port }], `pg agrees on ${cs}`)
    }
    const p = parseHosts({ connectionString: 'postgresql://a,b/db?target_session_attrs=prefer%2Dstandby&load_balance_hosts=disable' })
    assert.equal(p.targetSessionAttrs, 'prefer-standby')
    assert.equal(p.loadBalanceHosts, 'disable')
    assert.throws(() => parseHosts({ connectionString: 'postgresql://a,b/db?load_balance_hosts=yes' }), isConfigError(/load_balance_hosts=yes in the connection string/))
    // No host at all: pg's defaults decide, as pg would.
    assert.deepEqual(parseHosts({ connectionString: 'postgresql:///db' }).hosts, [])
  })

  it("a parse failure never quotes the password", () => {
    assert.throws(() => parseHosts({ connectionString: 'postgresql://app:Hunter2@h1:bad/db' }), (err: unknown) => {
      isConfigError(/cannot parse the connection string: Invalid URL/)(err)
      assert.doesNotMatch(String((err as Error).stack), /Hunter2/)
      return true
    })
  })
})

describe("the lookup hook's answer is checked where it is used", () => {
  const answers: [string, () => unknown, RegExp][] = [
    ['a non-array', async () => '127.0.0.1', /guard\.lookup resolved to "127\.0\.0\.1" for db\.bad\.test; it must resolve to an array of IP addresses/],
    ['an object', async () => ({ address: '127.0.0.1' }), /guard\.lookup resolved to an object/],
    ['undefined', async () => undefined, /guard\.lookup resolved to undefined/],
    ['a non-IP entry', async () => ['db.bad.test'], /guard\.lookup resolved db\.bad\.test to "db\.bad\.test" at \[0\]/],
    ['a number entry', async () => [42], /guard\.lookup resolved db\.bad\.test to number 42 at \[0\]/],
    ['a non-Error rejection', () => Promise.reject('nope'), /guard\.lookup rejected for db\.bad\.test with "nope", not an Error/],
    ['an undefined rejection', () => Promise.reject(undefined), /guard\.lookup rejected for db\.bad\.test with undefined, not an Error/],
    ['a synchronous throw', () => { throw 7 }, /guard\.lookup rejected for db\.bad\.test with number 7, not an Error/],
  ]
  for (const [what, lookup, message] of answers) {
    it(`${what}: the query rejects with a coded error instead of hanging`, { timeout: 10_000 }, async () => {
      const pool = new Pool({ host: 'db.bad.test', port: 5432, guard: { lookup: lookup as never, dnsIntervalMs: 0, metrics: 'off' } })
      try {
        await assert.rejects(pool.query('SELECT 1'), isConfigError(message))
      } finally {
        await pool.end()
      }
    })
  }

  it("an Error from the hook is passed through as it is", { timeout: 10_000 }, async () => {
    const boom = Object.assign(new Error('resolver down'), { code: 'EAI_AGAIN' })
    const pool = new Pool({ host: 'db.bad.test', guard: { lookup: async () => Promise.reject(boom), dnsIntervalMs: 0, metrics: 'off' } })
    try {
      await assert.rejects(pool.query('SELECT 1'), (err: unknown) => err === boom)
    } finally {
      await pool.end()
    }
  })

  it('DNS re-resolution keeps the last good answer and records the coded error', { timeout: 10_000 }, async () => {
    const sequence: (() => unknown)[] = [
      async () => ['127.0.0.1'],
      async () => ({ not: 'an array' }),
      () => Promise.reject(undefined),
      () => Promise.reject('str'),
      async () => ['127.0.0.1', 42],
      async () => [],
    ]
    const seen: { addresses: string[] | null; error: string | null }[] = []
    let done!: () => void
    const finished = new Promise<void>((resolve) => (done = resolve))
    let pool: Pool | undefined = undefined
    let calls = 0
    // Each call sees what the previous one left: the DNS loop never overlaps itself.
    const lookup = (): Promise<string[]> => {
      const h = pool?.guard.topology().hosts[0]
      if (h) seen.push({ addresses: h.addresses, error: h.error })
      if (calls === sequence.length) {
        done()
        return new Promise(() => {}) // park the loop; pool.end() stops it
      }
      return sequence[calls++]() as Promise<string[]>
    }
    pool = new Pool({ host: 'db.dns.test', guard: { lookup, dnsIntervalMs: 5, checkIntervalMs: 0, metrics: 'off' } })
    const keepAlive = setInterval(() => {}, 60_000) // the DNS loop's timers are unref'd: hold the event loop open
    try {
      await finished
      // The first call runs inside the constructor (pool not assigned yet): seen[i] is what call i left.
      assert.equal(seen.length, 6)
      assert.deepEqual(seen.map((s) => s.addresses), [['127.0.0.1'], ['127.0.0.1'], ['127.0.0.1'], ['127.0.0.1'], ['127.0.0.1'], ['127.0.0.1']])
      assert.equal(seen[0].error, null)
      const errors = seen.slice(1).map((s) => s.error)
      assert.match(errors[0]!, /^DNS: pg-pool-guard: guard\.lookup resolved to an object .* \(PGG_CONFIG_INVALID\)$/)
      assert.match(errors[1]!, /^DNS: pg-pool-guard: guard\.lookup rejected for db\.dns\.test with undefined, not an Error \(PGG_CONFIG_INVALID\)$/)
      assert.match(errors[2]!, /^DNS: pg-pool-guard: guard\.lookup rejected for db\.dns\.test with "str", not an Error \(PGG_CONFIG_INVALID\)$/)
      assert.match(errors[3]!, /^DNS: pg-pool-guard: guard\.lookup resolved db\.dns\.test to number 42 at \[1\].*\(PGG_CONFIG_INVALID\)$/)
      assert.equal(errors[4], 'DNS: no address for db.dns.test (ENOTFOUND)', 'an empty answer keeps the last good one')
    } finally {
      clearInterval(keepAlive)
      await pool.end()
    }
  })
})
