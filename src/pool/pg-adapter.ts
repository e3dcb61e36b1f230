/**
 * The only file that reads or patches node-postgres internals (pg 8.x, pg-pool 3.x). Everything else in
 * this library talks to pg through these functions, so a pg upgrade that moves a private field breaks
 * one file, and the integration tests say which function.
 *
 * Internals used, and why there is no public alternative:
 * - client.connection.stream, socket._handle.fd: the TCP socket and its fd (for setsockopt/TCP_INFO/inode).
 * - client.processID: the backend pid (public field, but undocumented).
 * - client._activeQuery, client._queryable: is a query in flight; is the client usable.
 * - pool._clients, pool._idle, pool._remove(): which clients the pool holds, which are idle, and removing
 *   an idle client exactly as pg-pool's idle timeout does (counters updated, 'remove' emitted).
 * - pool.Client, pool.connect, pool._afterConnect: wrapped per pool instance to see each client as it is
 *   created, the code that acquires it, and to jitter maxLifetimeSeconds.
 */
import { dirname } from 'node:path'
import type { Socket } from 'node:net'
import type { Client, Pool as PgPool, PoolClient } from 'pg'

/* eslint-disable @typescript-eslint/no-explicit-any */
type AnyClient = Client & Record<string, any>
type AnyPool = Record<string, any>

/**
 * pg's own connection-string parser (pg-connection-string, resolved from pg's install so both agree on
 * every parameter), for the places where we must override host and port: a connection string wins over
 * separate fields in pg.
 */
export function parseConnectionString(connectionString: string): Record<string, unknown> {
  const path = require.resolve('pg-connection-string', { paths: [dirname(require.resolve('pg'))] })
  const { parse } = require(path) as { parse(s: string): Record<string, unknown> }
  return { ...parse(connectionString) }
}

/**
 * A pg.Client config for one host of the pool: the pool's options copied with their descriptors (pg-pool
 * keeps the password non-enumerable, and a spread would drop it), the connection string parsed into fields
 * (it would override host and port), then `host`, `port` and `overrides` applied.
 */
export function clientConfigFor(poolOptions: object, host: string, port: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, d] of Object.entries(Object.getOwnPropertyDescriptors(poolOptions))) {
    Object.defineProperty(out, key, { ...d, configurable: true, writable: true })
  }
  const cs = out.connectionString
  delete out.connectionString
  if (typeof cs === 'string') Object.assign(out, parseConnectionString(cs))
  return Object.assign(out, { host, port }, overrides)
}

/** The plain TCP socket under a client, also when pg upgraded it to TLS (same fd on Node 20). */
export function rawSocketOf(client: Client): Socket | undefined {
  const stream = (client as AnyClient).connection?.stream as any
  if (!stream) return undefined
  // TLSSocket: its handle is a TLSWrap whose _parentWrap is the net.Socket it was given by pg.
  return (stream._handle?._parentWrap as Socket | undefined) ?? (stream as Socket)
}

/** The kernel file descriptor of a connected socket, or undefined (not connected, not TCP, or closed). */
export function fdOf(socket: Socket | undefined): number | undefined {
  const handle = (socket as any)?._handle
  const fd = handle?.fd ?? handle?._parent?.fd
  return typeof fd === 'number' && fd >= 0 ? fd : undefined
}

export function backendPidOf(client: Client): number | null {
  return (client as AnyClient).processID ?? null
}

export function hasQueryInFlight(client: Client): boolean {
  const c = client as AnyClient
  return Boolean(c._activeQuery) || (c._sentQueryQueue?.length ?? 0) > 0
}

export function isIdleInPool(pool: PgPool, client: Client): boolean {
  return ((pool as unknown as AnyPool)._idle as { client: Client }[]).some((item) => item.client === client)
}

export function clientsOf(pool: PgPool): Client[] {
  return ((pool as unknown as AnyPool)._clients as Client[]).slice()
}

/** Listen to ParameterStatus messages (in_hot_standby, default_transaction_read_only, server_version, ...). */
export function onParameterStatus(client: Client, listener: (name: string, value: string) => void): void {
  ;(client as AnyClient).connection?.on('parameterStatus', (msg: { parameterName: string; parameterValue: string }) =>
    listener(msg.parameterName, msg.parameterValue)
  )
}

/**
 * A FATAL (or PANIC) ErrorResponse means the backend is exiting: pg_terminate_backend, a shutdown, a
 * crash. pg rejects the running query with it but keeps the client queryable until the socket closes a
 * moment later, so a client released in between goes back to the pool dead. Marking it unqueryable at once
 * makes pg-pool remove it on release instead.
 */
export function retireOnFatal(client: Client): void {
  const c = client as AnyClient
  c.connection?.on('errorMessage', (msg: { severity?: string }) => {
    if (msg.severity === 'FATAL' || msg.severity === 'PANIC') c._queryable = false
  })
}

/** Fires once the client's TCP socket is connected, after pg applied its own keepAlive setting. */
export function onSocketConnected(client: Client, listener: () => void): void {
  ;(client as AnyClient).connection?.once('connect', listener)
}

/**
 * Remove an idle client the way pg-pool's idle timeout does ('remove' emitted, counters updated), then
 * destroy its socket: a graceful end() would wait for a FIN that a vanished peer never sends.
 */
export function evictIdle(pool: PgPool, client: Client): void {
  ;(pool as unknown as AnyPool)._remove(client)
  rawSocketOf(client)?.destroy()
  ;(client as AnyClient).connection?.stream?.destroy()
}

/**
 * Destroy an in-use client's socket with `err`: pg rejects the running query with `err` at once and marks
 * the client unqueryable, so pg-pool removes it on release. (The client also emits `err`; the guard keeps
 * a listener on every client so that this never becomes an uncaught exception.)
 */
export function destroyInUse(client: Client, err: Error): void {
  ;(client as AnyClient).connection?.stream?.destroy(err)
}

/**
 * pg-pool's newClient makes one attempt. With several hosts, a failed attempt moves to the next host
 * (libpq semantics) before the caller hears anything; only when every attempt failed does the caller get
 * one error naming them all. pg-pool's accounting is kept: each attempt is a full newClient (the client is
 * counted, and uncounted when it fails), and a retry that would exceed `max` goes back to the queue's head.
 */
function installPlanner(
  p: AnyPool,
  plan: NonNullable<PoolHooks['plan']>,
  attempting: NonNullable<PoolHooks['attempting']>,
  attemptsFailed: NonNullable<PoolHooks['attemptsFailed']>
): void {
  const newClient = p.newClient
  p.newClient = function plannedNewClient(this: AnyPool, pendingItem: { callback: Function; timedOut?: boolean }) {
    const attempts = plan()
    if (attempts.length <= 1) {
      if (attempts.length === 1) attempting(attempts[0].target)
      return newClient.call(this, pendingItem)
    }
    const failures: { label: string; error: Error }[] = []
    const tryAt = (i: number): void => {
      attempting(attempts[i].target)
      newClient.call(this, {
        get timedOut() {
          return pendingItem.timedOut
        },
        callback: (err: Error | undefined, client: unknown, done: unknown) => {
          if (!err) return pendingItem.callback(err, client, done)
          failures.push({ label: attempts[i].label, error: err })
          if (i + 1 < attempts.length && !pendingItem.timedOut && !this.ending) {
            if (this._clients.length >= this.options.max) {
              // Another waiter took the slot meanwhile: wait in line like any caller, then start over.
              this._pendingQueue.unshift(pendingItem)
              return
            }
            return tryAt(i + 1)
          }
          pendingItem.callback(attemptsFailed(failures), undefined, done)
        },
      })
    }
    tryAt(0)
  }
}

/**
 * Mark an in-use client to be removed when it is released (instead of destroying it under its holder):
 * pg-pool removes a client whose use count reached maxUses.
 */
export function retireOnRelease(client: Client): void {
  ;(client as AnyClient)._poolUseCount = Infinity
}

/**
 * A stream factory for pg whose sockets resolve host names through `lookup` (the guard's resolver hook),
 * so that pooled connections and the stale-DNS check see the same answers.
 */
export function lookupStream(lookup: (hostname: string) => Promise<string[]>): () => Socket {
  const nodeLookup = (hostname: string, options: { all?: boolean; family?: number }, cb: (...args: any[]) => void): void => {
    lookup(hostname).then(
      (addrs) => {
        const all = addrs.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }))
        if (all.length === 0) return cb(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }))
        if (options.all) cb(null, all)
        else cb(null, all[0].address, all[0].family)
      },
      (err: Error) => cb(err)
    )
  }
  return () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const net = require('node:net') as typeof import('node:net')
    const socket = new net.Socket()
    const connect = socket.connect.bind(socket) as (...args: any[]) => Socket
    ;(socket as any).connect = (port: unknown, host?: unknown, ...rest: unknown[]) =>
      typeof port === 'number' && typeof host === 'string' ? connect({ port, host, lookup: nodeLookup }) : connect(port, host, ...rest)
    return socket
  }
}

/** pg-pool's two timeout messages: waiting for a free client, and a new connection's connect. */
export function isPoolTimeout(err: Error): boolean {
  return err.message === 'timeout exceeded when trying to connect' || err.message === 'Connection terminated due to connection timeout'
}

/**
 * Open one more client in the background, as pg-pool does for a caller (events connect, acquire, release),
 * and put it in the idle list. pool.connect() cannot do this: it hands out an existing idle client first.
 */
export function openIdleClient(pool: PgPool): Promise<Error | undefined> {
  return new Promise((resolve) => {
    ;(pool as unknown as AnyPool).newClient({
      callback: (err: Error | undefined, client: PoolClient | undefined) => {
        client?.release()
        resolve(err)
      },
    })
  })
}

export interface PoolHooks {
  /** The config a new client is built from (choose its host); identity when absent. */
  clientConfig?(config: Record<string, unknown>): Record<string, unknown>
  /** A client object was just constructed by the pool (not connected yet). */
  clientCreated(client: Client): void
  /**
   * Runs after a client connected and before the pool sees it (role and fencing checks). A rejection fails
   * the connection attempt: the client is destroyed and the planner may try the next host.
   */
  afterConnect?(client: Client): Promise<void>
  /** Abandon a connection attempt after this long (set with several hosts, so the next one gets its turn). */
  attemptTimeoutMs?: number
  /** Connection attempts for one new client, in order; absent or one entry: pg-pool's single attempt. */
  plan?(): { target: unknown; label: string }[]
  /** The attempt about to be made (read by clientConfig, synchronously, inside pg-pool's newClient). */
  attempting?(target: unknown): void
  /** Turns the failures of a multi-attempt connect into one error. */
  attemptsFailed?(failures: { label: string; error: Error }[]): Error
  /** pool.connect() was called (also by pool.query); returns a tag to attach to the client it yields. */
  connectCalled?(): unknown
  /** The client pool.connect() yields, with the tag connectCalled returned. */
  clientYielded?(client: PoolClient, tag: unknown): void
  /** pool.connect() failed (a timeout, no host, ...), with the tag connectCalled returned. */
  connectFailed?(err: Error, tag: unknown): void
  /** Lifetime in seconds for one new client, given the configured maxLifetimeSeconds. */
  lifetimeSeconds?(configured: number): number
  /** pool.end() was called. */
  ending(): void
}

/** Wrap one pool instance's client factory, connect and lifetime scheduling. Idempotent per pool. */
export function installPoolHooks(pool: PgPool, hooks: PoolHooks): void {
  const p = pool as unknown as AnyPool
  if (p.__pgPoolGuardHooked) throw new Error('pg-pool-guard: this pool is already guarded')
  Object.defineProperty(p, '__pgPoolGuardHooked', { value: true, enumerable: false })

  const Base = p.Client as new (...args: any[]) => any
  const { clientConfig, afterConnect, attemptTimeoutMs } = hooks
  p.Client = class GuardedClient extends Base {
    constructor(config: Record<string, unknown>, ...rest: any[]) {
      super(clientConfig ? clientConfig(config) : config, ...rest)
      hooks.clientCreated(this as unknown as Client)
    }

    connect(callback?: (err?: Error) => void): any {
      if (!afterConnect && !attemptTimeoutMs) return super.connect(callback as any)
      const stream = (this as AnyClient).connection?.stream
      const timer = attemptTimeoutMs
        ? setTimeout(() => stream?.destroy(new Error(`connection attempt to ${this.host}:${this.port} timed out after ${attemptTimeoutMs} ms`)), attemptTimeoutMs)
        : undefined
      timer?.unref()
      const run = new Promise<void>((resolve, reject) => super.connect((err: Error | undefined) => (err ? reject(err) : resolve())))
        .then(() => afterConnect?.(this as unknown as Client))
        .finally(() => clearTimeout(timer))
        .catch((err: Error) => {
          ;(this as AnyClient).connection?.stream?.destroy()
          throw err
        })
      if (callback) {
        run.then(() => callback(), callback)
        return undefined
      }
      return run.then(() => this)
    }
  }

  if (hooks.plan && hooks.attempting && hooks.attemptsFailed) {
    installPlanner(p, hooks.plan, hooks.attempting, hooks.attemptsFailed)
  }

  if (hooks.connectCalled && hooks.clientYielded) {
    const connect = p.connect.bind(p)
    const { connectCalled, clientYielded } = hooks
    const connectFailed = hooks.connectFailed ?? (() => {})
    p.connect = function guardedConnect(cb?: (err: Error | undefined, client?: PoolClient, done?: unknown) => void) {
      const tag = connectCalled()
      if (typeof cb === 'function') {
        return connect((err: Error | undefined, client: PoolClient | undefined, done: unknown) => {
          if (err) connectFailed(err, tag)
          else if (client) clientYielded(client, tag)
          cb(err, client, done)
        })
      }
      return connect().then(
        (client: PoolClient) => {
          clientYielded(client, tag)
          return client
        },
        (err: Error) => {
          connectFailed(err, tag)
          throw err
        }
      )
    }
  }

  const end = p.end
  p.end = function guardedEnd(this: AnyPool, ...args: unknown[]) {
    if (!this.ending) hooks.ending()
    return end.apply(this, args)
  }

  if (hooks.lifetimeSeconds) {
    const afterConnect = p._afterConnect
    const { lifetimeSeconds } = hooks
    // pg-pool reads options.maxLifetimeSeconds once per client, synchronously, when scheduling its expiry.
    p._afterConnect = function (this: AnyPool, ...args: unknown[]) {
      const configured = this.options.maxLifetimeSeconds
      if (!configured) return afterConnect.apply(this, args)
      this.options.maxLifetimeSeconds = lifetimeSeconds(configured)
      try {
        return afterConnect.apply(this, args)
      } finally {
        this.options.maxLifetimeSeconds = configured
      }
    }
  }
}
