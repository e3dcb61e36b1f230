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

export function isQueryable(client: Client): boolean {
  const c = client as AnyClient
  return c._queryable !== false && !c._ending
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
  /** A client object was just constructed by the pool (not connected yet). */
  clientCreated(client: Client): void
  /** pool.connect() was called (also by pool.query); returns a tag to attach to the client it yields. */
  connectCalled?(): unknown
  /** The client pool.connect() yields, with the tag connectCalled returned. */
  clientYielded?(client: PoolClient, tag: unknown): void
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

  const Base = p.Client as new (...args: any[]) => Client
  p.Client = class GuardedClient extends Base {
    constructor(...args: any[]) {
      super(...args)
      hooks.clientCreated(this)
    }
  }

  if (hooks.connectCalled && hooks.clientYielded) {
    const connect = p.connect.bind(p)
    const { connectCalled, clientYielded } = hooks
    p.connect = function guardedConnect(cb?: (err: Error | undefined, client?: PoolClient, done?: unknown) => void) {
      const tag = connectCalled()
      if (typeof cb === 'function') {
        return connect((err: Error | undefined, client: PoolClient | undefined, done: unknown) => {
          if (!err && client) clientYielded(client, tag)
          cb(err, client, done)
        })
      }
      return connect().then((client: PoolClient) => {
        clientYielded(client, tag)
        return client
      })
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
