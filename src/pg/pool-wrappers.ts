/**
 * How the guard joins a pool:
 * - A pool this library builds (`new Pool()`) gets the guarded Client class through pg-pool's own
 *   `options.Client`, and its newClient/end/_afterConnect/_acquireClient/_release overrides as methods of
 *   the subclass (pool/pool.ts) — injection, no patching.
 * - A pool something else built (`guard(existingPool)`) gets the same class and the same wrappers
 *   assigned onto the instance (`patchPool`): the one place this library patches pg.
 * - `connect` is wrapped (`instrumentConnect`) only while something reads what it records (metrics bound to
 *   an SDK, leak detection).
 *
 * pg-pool internals, and why: newClient (to try several hosts), connect (to see the code that acquires a
 * client), end (to know when the pool ends), _afterConnect (to jitter maxLifetimeSeconds),
 * _acquireClient(client, pendingItem, idleListener, isNew) (the one place pg-pool hands a client out: an
 * idle one is checked there first, and the client is in use from there) and _release (the one place it
 * takes one back: idle from there).
 */
import type { Client, Pool as PgPool, PoolClient } from 'pg'
import { type AcquireClient, type ClientClass, type PendingItem, pool$ } from './internals'
import { guardedClientClass } from './client-classes'
import { HookBinding, type PoolHooks } from './hooks'

/**
 * The five pool methods the guard wraps, written once: the Pool subclass calls them from its overrides,
 * `patchPool` assigns them onto a pool it did not build. `orig` is pg-pool's own method.
 */
export const wrap = {
  /**
   * pg-pool's newClient makes one attempt. With several hosts, a failed attempt moves to the next host
   * (libpq semantics) before the caller hears anything; only when every attempt failed does the caller get
   * one error naming them all. pg-pool's accounting is kept: each attempt is a full newClient (the client is
   * counted, and uncounted when it fails), and a retry that would exceed `max` goes back to the queue's head.
   */
  newClient(pool: PgPool, binding: HookBinding, orig: (item: PendingItem) => void, item: PendingItem, admitted = false): void {
    const hooks = binding.hooks
    const verdict = admitted ? undefined : hooks?.admit?.()
    if (verdict instanceof Promise) {
      const p = pool$(pool)
      // A waiting connection holds no slot: let the next queued caller start waiting (or connecting) too.
      process.nextTick(() => p._pulseQueue())
      void verdict.then((refused) => {
        if (refused) return refuse(pool, item, refused)
        if (item.timedOut) return // pg-pool already told the caller
        if (p.ending) return refuse(pool, item, hooks?.endedError?.() ?? new Error('Cannot use a pool after calling end on the pool'))
        // Others may have taken the room meanwhile: wait in line like any caller.
        if (p._clients.length >= p.options.max) return void p._pendingQueue.unshift(item)
        wrap.newClient(pool, binding, orig, item, true)
      })
      return
    }
    if (verdict) return refuse(pool, item, verdict)
    const plan = hooks?.plan?.() ?? []
    if (plan.length <= 1 || !hooks?.attemptsFailed) {
      const retryAfter = hooks?.retryAfter
      if (!retryAfter) {
        binding.nextAttempt = plan[0]?.target
        return orig(item)
      }
      // One host: a refused login (it reached a fenced server behind a VIP that has not switched yet) is
      // tried again within the hook's bound; no query was sent, so nothing is retried but the connection.
      const p = pool$(pool)
      const started = Date.now()
      const attempt = (): void => {
        binding.nextAttempt = plan[0]?.target
        orig({
          get timedOut() {
            return item.timedOut
          },
          callback: (err, client, done) => {
            const delay = err ? retryAfter(err, Date.now() - started) : undefined
            if (delay === undefined || item.timedOut || p.ending) return item.callback(err, client, done)
            setTimeout(() => {
              if (item.timedOut) return
              if (p.ending) return refuse(pool, item, hooks?.endedError?.() ?? err!)
              if (p._clients.length >= p.options.max) return void p._pendingQueue.unshift(item)
              attempt()
            }, delay).unref()
          },
        })
      }
      return attempt()
    }
    const attemptsFailed = hooks.attemptsFailed
    const p = pool$(pool)
    const failures: { label: string; error: Error }[] = []
    const tryAt = (i: number): void => {
      binding.nextAttempt = plan[i].target
      orig({
        get timedOut() {
          return item.timedOut
        },
        callback: (err, client, done) => {
          if (!err) return item.callback(err, client, done)
          failures.push({ label: plan[i].label, error: err })
          if (i + 1 < plan.length && !item.timedOut && !p.ending) {
            if (p._clients.length >= p.options.max) {
              // Another waiter took the slot meanwhile: wait in line like any caller, then start over.
              p._pendingQueue.unshift(item)
              return
            }
            return tryAt(i + 1)
          }
          item.callback(attemptsFailed(failures), undefined, done)
        },
      })
    }
    tryAt(0)
  },

  connect(hooks: PoolHooks, orig: (cb?: PendingItem['callback']) => Promise<PoolClient> | undefined, cb?: PendingItem['callback']): Promise<PoolClient> | undefined {
    const { connectCalled, clientYielded } = hooks
    if (!connectCalled || !clientYielded) return orig(cb)
    const connectFailed = hooks.connectFailed ?? (() => {})
    const tag = connectCalled()
    if (typeof cb === 'function') {
      return orig((err, client, done) => {
        if (err) connectFailed(err)
        else if (client) clientYielded(client, tag)
        cb(err, client, done)
      })
    }
    return orig()!.then(
      (client) => {
        clientYielded(client, tag)
        return client
      },
      (err: Error) => {
        connectFailed(err)
        throw err
      }
    )
  },

  /**
   * pg-pool's end() leaves callers already waiting for a client in its queue for ever (it removes the idle
   * clients they would have had): they get the error a caller gets after end(), with a code.
   */
  end(pool: PgPool, hooks: PoolHooks, orig: (...args: unknown[]) => unknown, args: unknown[]): unknown {
    const p = pool$(pool)
    const first = !p.ending
    const result = orig(...args)
    if (first) {
      hooks.ending()
      for (const item of p._pendingQueue.splice(0)) {
        if (!item.timedOut) item.callback(hooks.endedError?.() ?? new Error('Cannot use a pool after calling end on the pool'), undefined, () => {})
      }
    }
    return result
  },

  /**
   * pg-pool hands out a client. One the guard evicted instead is never handed out: the waiter goes back to
   * the head of the queue and the queue is pulsed, so it gets the next idle client or a new connection (its
   * slot was freed), never an error for it.
   */
  acquireClient(pool: PgPool, hooks: PoolHooks, orig: AcquireClient, client: Client, item: PendingItem, idleListener: unknown, isNew: boolean): unknown {
    const acquiring = hooks.acquiring
    if (!acquiring || acquiring(client, isNew)) return orig(client, item, idleListener, isNew)
    return wrap.handOutRefused(pool, item)
  },

  /** The client meant for `item` was evicted instead: the waiter goes back to the head of the queue. */
  handOutRefused(pool: PgPool, item: PendingItem): undefined {
    const p = pool$(pool)
    if (!item.timedOut) p._pendingQueue.unshift(item)
    p._pulseQueue()
    return undefined
  },

  /** pg-pool takes a client back: the guard first (idle from here), then pg-pool keeps or removes it. */
  release(hooks: PoolHooks, orig: Release, client: Client, idleListener: unknown, err: unknown): unknown {
    hooks.released?.(client)
    return orig(client, idleListener, err)
  },

  /** pg-pool reads options.maxLifetimeSeconds once per client, synchronously, when scheduling its expiry. */
  afterConnect(pool: PgPool, hooks: PoolHooks, orig: (...args: unknown[]) => unknown, args: unknown[]): unknown {
    const options = pool$(pool).options
    const configured = options.maxLifetimeSeconds
    if (!configured || !hooks.lifetimeSeconds) return orig(...args)
    options.maxLifetimeSeconds = hooks.lifetimeSeconds(configured)
    try {
      return orig(...args)
    } finally {
      options.maxLifetimeSeconds = configured
    }
  },
}

/** A new connection refused before any attempt: the caller hears it, and the next waiter gets its turn. */
function refuse(pool: PgPool, item: PendingItem, err: Error): void {
  // As pg-pool does after a failed connect: pulse the queue so queued callers get their own answer.
  process.nextTick(() => pool$(pool)._pulseQueue())
  if (!item.timedOut) item.callback(err, undefined, () => {})
}

const GUARDED = Symbol.for('pg-pool-guard.guarded')

/** Whether a guard holds this pool. */
export function isGuardedPool(pool: PgPool): boolean {
  return (pool as unknown as Record<symbol, boolean>)[GUARDED] === true
}

/** Marks a pool as guarded; false when it already was (a pool has one guard). */
export function claimPool(pool: PgPool): boolean {
  const p = pool as unknown as Record<symbol, boolean>
  if (p[GUARDED]) return false
  Object.defineProperty(p, GUARDED, { value: true, enumerable: false })
  return true
}

/** For guard(existingPool): the guarded Client class and the wrappers, assigned onto the instance. */
export function patchPool(pool: PgPool, hooks: PoolHooks, onUnguarded?: () => void): void {
  const p = pool$(pool)
  const binding = new HookBinding()
  binding.hooks = hooks
  p.Client = guardedClientClass(p.Client, binding, onUnguarded)
  const newClient = p.newClient.bind(p)
  p.newClient = (item) => wrap.newClient(pool, binding, newClient, item)
  const end = p.end.bind(p)
  p.end = (...args) => wrap.end(pool, hooks, end, args)
  const afterConnect = p._afterConnect.bind(p)
  p._afterConnect = (...args) => wrap.afterConnect(pool, hooks, afterConnect, args)
  const acquireClient = p._acquireClient.bind(p) as AcquireClient
  p._acquireClient = (client: Client, item: PendingItem, idleListener: unknown, isNew: boolean) => wrap.acquireClient(pool, hooks, acquireClient, client, item, idleListener, isNew)
  const release = p._release.bind(p) as Release
  p._release = (client: Client, idleListener: unknown, err: unknown) => wrap.release(hooks, release, client, idleListener, err)
}

/**
 * Wraps `pool.connect` (an own property of this pool, not its class's method) to see the code that acquires
 * a client: installed only once something reads what the hooks record (metrics bound to an SDK, leak
 * detection), so a pool without either pays nothing per checkout.
 */
export function instrumentConnect(pool: PgPool, hooks: PoolHooks): void {
  const orig = (pool as unknown as { connect: (cb?: PendingItem['callback']) => Promise<PoolClient> | undefined }).connect.bind(pool)
  Object.defineProperty(pool, 'connect', {
    configurable: true, writable: true, enumerable: false,
    value: (cb?: PendingItem['callback']) => wrap.connect(hooks, orig, cb),
  })
}

/** pg-pool's _release(client, idleListener, err). */
export type Release = (client: Client, idleListener: unknown, err: unknown) => unknown
