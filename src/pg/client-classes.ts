/**
 * The guarded Client classes: the one a guarded pool builds its clients with, and the one for clients
 * outside any pool (pg-pool-guard's `Client`, what guardAllClients() puts in pg's place). They add no
 * query() of their own: a client costs each query nothing. What they add is at construction (the guard
 * learns of the client before its TCP handshake) and at connect (the check after login).
 */
import type { Client } from 'pg'
import { type ClientClass, canSeeInto, client$, endQuietly } from './internals'
import type { HookBinding, PoolHooks } from './hooks'

/**
 * connect() with a check after login: a rejection ends the client quietly and fails the connect with it.
 * With nothing to check (afterConnect returns undefined), a callback runs where pg runs it: inside pg's
 * ReadyForQuery handler, before the client takes queries, so a query sent from the callback is queued as
 * pg queues it (and one followed by end() in the same callback is never sent, as with pg).
 */
function connectThen(
  self: Client, connect: (cb: (err?: Error) => void) => void, afterConnect: (c: Client) => Promise<void> | undefined, callback?: (err?: Error) => void
): Promise<unknown> | undefined {
  const failed = (err: Error): Error => {
    endQuietly(self)
    return err
  }
  if (callback) {
    connect((err) => {
      if (err) return callback(failed(err))
      const check = afterConnect(self)
      if (check === undefined) return callback()
      check.then(() => callback(), (e: Error) => callback(failed(e)))
    })
    return undefined
  }
  // The owner's Promise class (pg's `Promise` option, e.g. bluebird): connect() returns one of its promises.
  const P = (client$(self) as unknown as { _Promise?: PromiseConstructor })._Promise ?? Promise
  return new P<void>((resolve, reject) => connect((err) => (err ? reject(err) : resolve())))
    .then(() => afterConnect(self))
    .then(
      () => self,
      (err: Error) => {
        throw failed(err)
      }
    )
}

type LooseClient = new (config?: unknown, ...rest: unknown[]) => { connect(callback?: (err?: Error) => void): Promise<unknown> | undefined }

/** Marks the guarded Client classes this file builds, with the class they extend. */
const BASE_CLASS = Symbol.for('pg-pool-guard.baseClientClass')

/** The class to build a guarded class on: a guarded class (ours, standalone) is replaced by what it extends. */
function unguarded(Base: ClientClass): ClientClass {
  return ((Base as unknown as Record<symbol, ClientClass | undefined>)[BASE_CLASS] ?? Base) as ClientClass
}

/**
 * A pg.Client for the guard's own use (host monitor, promotion watch, probes, the never-connected clients
 * that read pg's defaults): built from pg's own class even after guardAllClients() replaced it, so the
 * guard's connections never join the standalone guard (phantom 'connecting' rows, a monitor watched by
 * the guard it serves).
 */
export function ownClient(pgModule: { Client: unknown }, config: unknown): Client {
  const Cls = unguarded(pgModule.Client as ClientClass) as unknown as new (config: unknown) => Client
  return new Cls(config)
}

/** The Client class a guarded pool builds its clients with: `Base` (pg.Client or the user's) + the hooks. */
export function guardedClientClass(Given: ClientClass, binding: HookBinding, onUnguarded: () => void = () => {}): ClientClass {
  const Base = unguarded(Given)
  class GuardedClient extends (Base as unknown as LooseClient) {
    constructor(config?: Record<string, unknown>, ...rest: unknown[]) {
      const hooks = binding.hooks
      const attempt = binding.nextAttempt
      binding.nextAttempt = undefined
      super(hooks?.clientConfig && config ? hooks.clientConfig(config, attempt) : config, ...rest)
      if (!canSeeInto(this)) {
        onUnguarded()
        return
      }
      hooks?.clientCreated(this, attempt)
    }

    override connect(callback?: (err?: Error) => void): Promise<unknown> | undefined {
      const afterConnect = binding.hooks?.afterConnect
      if (!afterConnect || !canSeeInto(this)) return super.connect(callback)
      return connectThen(this, (cb) => void super.connect(cb), afterConnect, callback)
    }
  }
  Object.defineProperty(GuardedClient, BASE_CLASS, { value: Base })
  return GuardedClient as unknown as ClientClass
}

/**
 * The Client class for clients outside any pool (pg-pool-guard's `Client`, what guardAllClients() puts in
 * pg's place): a `Base` client that joins the standalone guard for where it connects when connect() is
 * called (a client never connected costs nothing). `join` returns that guard's hooks (its afterConnect
 * checks the role when targetSessionAttrs asks).
 */
export function standaloneClientClass(
  Given: ClientClass,
  join: (client: Client, config: unknown) => PoolHooks | undefined,
  /** Throws on a config the guard refuses, when the client is built. */
  check: (config: unknown) => void = () => {}
): ClientClass {
  const Base = unguarded(Given)
  const configs = new WeakMap<object, unknown>()
  class StandaloneClient extends (Base as unknown as LooseClient) {
    constructor(config?: unknown, ...rest: unknown[]) {
      check(config)
      super(config, ...rest)
      configs.set(this, config)
    }

    override connect(callback?: (err?: Error) => void): Promise<unknown> | undefined {
      const afterConnect = canSeeInto(this) ? join(this, configs.get(this))?.afterConnect : undefined
      if (!afterConnect) return super.connect(callback)
      return connectThen(this as unknown as Client, (cb) => void super.connect(cb), afterConnect, callback)
    }
  }
  Object.defineProperty(StandaloneClient, BASE_CLASS, { value: Base })
  return StandaloneClient as unknown as ClientClass
}

/**
 * Put `Guarded` in place of `pgModule.Client` (the one patch of a pg module this library makes, and only
 * when asked to): every `new pg.Client()` in the process then builds a guarded client. pg.Pool is not
 * affected (pg binds its Pool to the original class when it loads). Returns how to undo it.
 */
export function replaceClientClass(pgModule: { Client: ClientClass }, Guarded: ClientClass): () => void {
  const original = pgModule.Client
  pgModule.Client = Guarded
  return () => {
    if (pgModule.Client === Guarded) pgModule.Client = original
  }
}

/** Whether a Client class is one of the guarded classes built here. */
export function isGuardedClass(cls: unknown): boolean {
  return typeof cls === 'function' && (cls as unknown as Record<symbol, unknown>)[BASE_CLASS] !== undefined
}
