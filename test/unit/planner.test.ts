/**
 * The connect planner's retries, without a server: pg-pool's newClient is a fake that fails or succeeds per
 * host, and wrap.newClient must try the hosts in the plan's order, build each client for its attempt, keep
 * pg-pool's accounting (a retry that would exceed max waits in line) and report every failure in one error.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Pool as PgPool } from 'pg'
import { HookBinding, type PendingItem, type PoolHooks, wrap } from '../../src/pg/adapter'

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
