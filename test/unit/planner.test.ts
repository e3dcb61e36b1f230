/**
 * The connect planner's retries, without a server: pg-pool's newClient is a fake that fails or succeeds per
 * host, and wrap.newClient must try the hosts in the plan's order, build each client for its attempt, keep
 * pg-pool's accounting (a retry that would exceed max waits in line) and report every failure in one error.
 * Then the plan's health ordering (planAttempts with degraded hosts) and the host health fact it reads
 * (judge/routing-rules.ts), pure.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Pool as PgPool } from 'pg'
import { isDegraded, noteDegradedHosts, ROUTING_HOLD_MS } from '../../src/judge/routing-rules'
import { HookBinding, type PoolHooks } from '../../src/pg/hooks'
import { wrap } from '../../src/pg/pool-wrappers'
import { type PendingItem } from '../../src/pg/internals'
import { type HostKnowledge, type HostSpec, planAttempts, type ServerRole } from '../../src/topology/hosts'

function fakePool(results: Record<string, Error | 'ok'>, max = 10) {
  const built: string[] = []
  const pool = { options: { max }, ending: false, _clients: [] as unknown[], _pendingQueue: [] as PendingItem[] }
  const binding = new HookBinding()
  const hooks: PoolHooks = {
    clientCreated: () => {},
    ending: () => {},
    plan: () => ['a', 'b', 'c'].map((h) => ({ target: h, label: `${h}:5432` })),
    attemptsFailed: (failures) => Object.assign(new Error(failures.map((f) => `${f.label} ${f.error.message}`).join('; ')), { failures }),
  }
  binding.hooks = hooks
  // pg-pool's newClient: builds one client (for binding.nextAttempt), connects it, calls back.
  const orig = (item: PendingItem): void => {
    const host = binding.nextAttempt as string
    binding.nextAttempt = undefined
    built.push(host)
    const r = results[host]
    queueMicrotask(() => (r === 'ok' ? item.callback(undefined, { host } as never) : item.callback(r)))
  }
  const connect = (): Promise<{ err?: Error; client?: { host: string } }> =>
    new Promise((resolve) => wrap.newClient(pool as unknown as PgPool, binding, orig, { callback: (err, client) => resolve({ err, client: client as never }) }))
  return { pool, built, connect }
}

describe('connect planner (wrap.newClient)', () => {
  it('a failed attempt moves to the next host before the caller hears anything', async () => {
    const f = fakePool({ a: new Error('ECONNREFUSED'), b: 'ok', c: 'ok' })
    const r = await f.connect()
    assert.equal(r.err, undefined)
    assert.equal(r.client?.host, 'b')
    assert.deepEqual(f.built, ['a', 'b'])
  })

  it('every host failing: one error naming each attempt, in order', async () => {
    const f = fakePool({ a: new Error('refused'), b: new Error('wrong role'), c: new Error('timeout') })
    const r = await f.connect()
    assert.equal(r.err?.message, 'a:5432 refused; b:5432 wrong role; c:5432 timeout')
    assert.deepEqual(f.built, ['a', 'b', 'c'])
  })

  it('a retry that would exceed max goes back to the head of the queue', async () => {
    const f = fakePool({ a: new Error('refused'), b: 'ok', c: 'ok' }, 1)
    f.pool._clients.push({}) // another waiter took the only slot meanwhile
    let settled = false
    void f.connect().then(() => (settled = true))
    await new Promise((r) => setImmediate(r))
    assert.equal(settled, false)
    assert.equal(f.pool._pendingQueue.length, 1, 'waiting in line like any caller')
    assert.deepEqual(f.built, ['a'])
  })

  it('one planned attempt (or none): pg-pool\'s own single attempt, for that host', async () => {
    const f = fakePool({ a: 'ok' })
    const r = await new Promise<{ client?: { host: string } }>((resolve) => {
      const binding = new HookBinding()
      binding.hooks = { clientCreated: () => {}, ending: () => {}, plan: () => [{ target: 'a', label: 'a:5432' }] }
      wrap.newClient(f.pool as unknown as PgPool, binding, (item) => {
        assert.equal(binding.nextAttempt, 'a')
        item.callback(undefined, { host: 'a' } as never)
      }, { callback: (_e, client) => resolve({ client: client as never }) })
    })
    assert.equal(r.client?.host, 'a')
  })
})

const PRIMARY: ServerRole = { inHotStandby: false, readOnly: false }
const STANDBY: ServerRole = { inHotStandby: true, readOnly: false }

describe('plans prefer healthy hosts', () => {
  const hosts: HostSpec[] = ['a', 'b', 'c', 'd'].map((host) => ({ host, port: 5432 }))
  const plan = (attrs: Parameters<typeof planAttempts>[1], know: Record<string, HostKnowledge>, lb: 'disable' | 'random' = 'disable', random?: () => number) =>
    planAttempts(hosts, attrs, lb, (h) => know[h.host] ?? {}, random).map((a) => (attrs === 'prefer-standby' ? `${a.host}:${a.require}` : a.host))

  it('a degraded host goes after the healthy ones, which keep their order', () => {
    assert.deepEqual(plan('any', { a: { degraded: true } }), ['b', 'c', 'd', 'a'])
    assert.deepEqual(plan('any', { b: { degraded: true }, a: { degraded: true } }), ['c', 'd', 'a', 'b'])
  })

  it('never excluded: every host stays in the plan, even when all are degraded (then list order)', () => {
    assert.deepEqual(plan('any', { a: { degraded: true }, b: { degraded: true }, c: { degraded: true }, d: { degraded: true } }), ['a', 'b', 'c', 'd'])
  })

  it('a degraded host that would do comes before hosts known to fail: wrong role, down, elsewhere, fenced', () => {
    const know = { a: { role: STANDBY }, b: { down: true }, c: { fenced: true }, d: { role: PRIMARY, degraded: true } }
    assert.deepEqual(plan('read-write', know), ['d', 'a', 'b', 'c'])
    assert.deepEqual(plan('any', { a: { elsewhere: true }, b: { degraded: true } }), ['c', 'd', 'b', 'a'])
  })

  it('known-good before unknown within the healthy and within the degraded hosts', () => {
    const know = { a: { degraded: true, role: PRIMARY }, b: {}, c: { degraded: true }, d: { role: PRIMARY } }
    assert.deepEqual(plan('read-write', know), ['d', 'b', 'a', 'c'])
  })

  it('among hosts that would fail anyway, healthy before degraded', () => {
    assert.deepEqual(plan('any', { a: { down: true, degraded: true }, b: { down: true } }), ['c', 'd', 'b', 'a'])
  })

  it('prefer-standby: a degraded standby still comes in the standby pass, after the healthy standbys', () => {
    const know = { a: { role: STANDBY, degraded: true }, b: { role: PRIMARY }, c: { role: STANDBY }, d: { role: PRIMARY } }
    assert.deepEqual(plan('prefer-standby', know), [
      'c:standby-first-pass', 'a:standby-first-pass', 'b:standby-first-pass', 'd:standby-first-pass',
      'b:any', 'c:any', 'd:any', 'a:any',
    ])
  })

  it('load_balance_hosts=random: healthy hosts in random order first, the degraded one always last', () => {
    let seed = 11
    const random = (): number => ((seed = (seed * 16807) % 2147483647) / 2147483647)
    const orders = new Set<string>()
    for (let i = 0; i < 30; i++) {
      const p = plan('any', { b: { degraded: true } }, 'random', random)
      assert.equal(p.at(-1), 'b')
      orders.add(p.join(''))
    }
    assert.ok(orders.size > 1, 'still shuffled')
  })
})

describe('which configured hosts are degraded (routing-rules)', () => {
  const sock = (hostKey: string, endpoint: string) => ({ hostKey, endpoint })
  it('a host is degraded when every endpoint its sockets reach is degraded', () => {
    const m = noteDegradedHosts({
      now: 1000,
      sockets: [sock('a:5432', '10.0.0.1:5432'), sock('b:5432', '10.0.0.2:5432'), sock('n:5432', '10.0.0.3:5432'), sock('n:5432', '10.0.0.4:5432')],
      health: [
        { endpoint: '10.0.0.1:5432', state: 'degraded' }, { endpoint: '10.0.0.2:5432', state: 'healthy' },
        { endpoint: '10.0.0.3:5432', state: 'degraded' }, { endpoint: '10.0.0.4:5432', state: 'healthy' },
      ],
      memory: new Map(),
    })
    assert.equal(isDegraded(m, 'a:5432', 1000), true)
    assert.equal(isDegraded(m, 'b:5432', 1000), false)
    assert.equal(isDegraded(m, 'n:5432', 1000), false, 'a name with one healthy address still has a healthy path')
  })

  it('healthy again as soon as its sockets say so', () => {
    const before = new Map([['a:5432', 1000]])
    const m = noteDegradedHosts({ now: 2000, sockets: [sock('a:5432', 'e')], health: [{ endpoint: 'e', state: 'healthy' }], memory: before })
    assert.equal(isDegraded(m, 'a:5432', 2000), false)
  })

  it('a host with no socket left stays degraded for the hold, then is tried like any host', () => {
    let m = noteDegradedHosts({ now: 1000, sockets: [sock('a:5432', 'e')], health: [{ endpoint: 'e', state: 'degraded' }], memory: new Map() })
    m = noteDegradedHosts({ now: 5000, sockets: [], health: [], memory: m })
    assert.equal(isDegraded(m, 'a:5432', 1000 + ROUTING_HOLD_MS - 1), true)
    assert.equal(isDegraded(m, 'a:5432', 1000 + ROUTING_HOLD_MS), false)
  })

  it('sockets without a health entry yet keep what was known', () => {
    const before = new Map([['a:5432', 1000]])
    const m = noteDegradedHosts({ now: 2000, sockets: [sock('a:5432', 'new')], health: [], memory: before })
    assert.equal(m.get('a:5432'), 1000)
  })

  it('nothing degraded: the same memory back, no allocation', () => {
    const memory = new Map()
    assert.equal(noteDegradedHosts({ now: 1, sockets: [sock('a:5432', 'e')], health: [{ endpoint: 'e', state: 'healthy' }], memory }), memory)
  })
})
