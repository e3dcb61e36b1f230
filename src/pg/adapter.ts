/**
 * The only file that reads or patches node-postgres internals (pg 8.x, pg-pool 3.x). Everything else in
 * this library talks to pg through these functions, so a pg upgrade that moves a private field breaks
 * one file, and the integration tests say which function. The private fields used are typed below.
 *
 * How the guard joins a pool:
 * - A pool this library builds (`new Pool()`) gets the guarded Client class through pg-pool's own
 *   `options.Client`, and its newClient/connect/end/_afterConnect/_acquireClient overrides as methods of the subclass
 *   (pool/pool.ts) — injection, no patching.
 * - A pool something else built (`guard(existingPool)`) gets the same class and the same five wrappers
 *   assigned onto the instance (`patchPool`): the one place this library patches pg.
 *
 * Internals used, and why there is no public alternative:
 * - client.connection.stream, socket._handle.fd: the TCP socket and its fd (for setsockopt/TCP_INFO/inode).
 * - client.processID: the backend pid (public field, but undocumented).
 * - client._activeQuery (pg 8.11: activeQuery, now a deprecated getter), client._sentQueryQueue (pipelining,
 *   newer pg only): is a query in flight.
 * - client._ending, client._poolUseCount: end a failed attempt quietly; retire a client on release.
 * - pool._clients, pool._idle, pool._remove(), pool._pendingQueue: which clients the pool holds, which are
 *   idle, removing an idle client exactly as pg-pool's idle timeout does (counters updated, 'remove'
 *   emitted), and putting a waiter back in line.
 * - pool.newClient, pool.connect, pool.end, pool._afterConnect: to try several hosts, to see the code that
 *   acquires a client, to know when the pool ends, and to jitter maxLifetimeSeconds.
 * - pool._acquireClient(client, pendingItem, idleListener, isNew): the one place pg-pool hands a client
 *   out; an idle one (isNew false) is checked there first (the checkout check).
 */
import { dirname } from 'node:path'
import type { EventEmitter } from 'node:events'
import { isIP, type Socket } from 'node:net'
import type { Client, Client as PgClient, Pool as PgPool, PoolClient } from 'pg'
import { ConfigError, ConnectionEvictedError } from '../errors'
import { failQueries, txStatusOf } from './in-flight'

/** The parts of pg's Connection this library reads. */
interface PgConnection extends EventEmitter {
  stream?: Socket & { _handle?: SocketHandle | null }
  _ending?: boolean
}

interface SocketHandle {
  fd?: number
  /** TLSWrap over the net.Socket pg gave it (Node 20+). */
  _parentWrap?: Socket
  _parent?: { fd?: number }
}

/** The parts of pg.Client this library reads or sets. */
interface PgClientInternals {
  connection?: PgConnection
  processID: number | null
  host: string
  port: number
  _activeQuery?: unknown
  /** pg 8.11's name for _activeQuery; newer pg keeps it as a getter that prints a deprecation warning. */
  activeQuery?: unknown
  _sentQueryQueue?: unknown[]
  _ending: boolean
  _poolUseCount?: number
  _connecting?: boolean
  _connected?: boolean
  _ended?: boolean
  _queryable?: boolean
  /** What pg resolved from the config, the environment and its defaults (host, port, user, database, password...). */
  connectionParameters?: Record<string, unknown>
}

export interface PendingItem {
  callback: (err: Error | undefined, client?: PoolClient, done?: unknown) => void
  timedOut?: boolean
}

/** The parts of pg-pool's Pool this library reads or wraps. */
interface PgPoolInternals {
  options: { max: number; min?: number; maxLifetimeSeconds?: number }
  ending: boolean
  ended: boolean
  Client: ClientClass
  _clients: Client[]
  _idle: { client: Client }[]
  _pendingQueue: PendingItem[]
  _remove(client: Client, callback?: () => void): void
  _pulseQueue(): void
  _acquireClient: AcquireClient
  newClient(item: PendingItem): void
  connect(cb?: PendingItem['callback']): Promise<PoolClient> | undefined
  end(...args: unknown[]): unknown
  _afterConnect(...args: unknown[]): unknown
}

/** pg-pool's _acquireClient(client, pendingItem, idleListener, isNew). */
export type AcquireClient = (client: Client, item: PendingItem, idleListener: unknown, isNew: boolean) => unknown

export type ClientClass = new (config?: Record<string, unknown>, ...rest: unknown[]) => Client

const client$ = (c: Client): PgClientInternals => c as unknown as PgClientInternals
const pool$ = (p: PgPool): PgPoolInternals => p as unknown as PgPoolInternals

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
  const stream = client$(client).connection?.stream
  if (!stream) return undefined
  return stream._handle?._parentWrap ?? stream
}

/** The kernel file descriptor of a connected socket, or undefined (not connected, not TCP, or closed). */
export function fdOf(socket: Socket | undefined): number | undefined {
  const handle = (socket as (Socket & { _handle?: SocketHandle | null }) | undefined)?._handle
  const fd = handle?.fd ?? handle?._parent?.fd
  return typeof fd === 'number' && fd >= 0 ? fd : undefined
}

export function backendPidOf(client: Client): number | null {
  return client$(client).processID ?? null
}

export function hasQueryInFlight(client: Client): boolean {
  const c = client$(client)
  // Newer pg sets _activeQuery in its constructor, so `in` tells the lines apart without touching the
  // deprecated getter. Without this, pg 8.11's queries were never seen in flight (no stall, no probe).
  const active = '_activeQuery' in c ? c._activeQuery : c.activeQuery
  return Boolean(active) || (c._sentQueryQueue?.length ?? 0) > 0
}

export function isIdleInPool(pool: PgPool, client: Client): boolean {
  return handingOut.has(client) || pool$(pool)._idle.some((item) => item.client === client)
}

/** Idle clients being checked on their way out: pg-pool took them off its idle list, no caller has them yet. */
const handingOut = new WeakSet<Client>()

/**
 * Runs `fn` (the checkout check's eviction) with `client` counted as idle: pg-pool took it off its idle
 * list just before handing it out, and the verdict table's idle action is the one that applies.
 */
export function asIdleWhileHandingOut<T>(client: Client, fn: () => T): T {
  handingOut.add(client)
  try {
    return fn()
  } finally {
    handingOut.delete(client)
  }
}

export function clientsOf(pool: PgPool): Client[] {
  return pool$(pool)._clients.slice()
}

export function poolOptionsOf(pool: PgPool): PgPoolInternals['options'] {
  return pool$(pool).options
}

/** Listen to ParameterStatus messages (in_hot_standby, default_transaction_read_only, server_version, ...). */
export function onParameterStatus(client: Client, listener: (name: string, value: string) => void): void {
  client$(client).connection?.on('parameterStatus', (msg: { parameterName: string; parameterValue: string }) =>
    listener(msg.parameterName, msg.parameterValue)
  )
}

/**
 * Listen to ErrorResponse messages. Registered when the client is built, so it runs before pg's own
 * handler: a FATAL is seen before the query's caller hears of it (and could release the client).
 */
export function onErrorMessage(client: Client, listener: (severity: string, code: string | undefined, message: string) => void): void {
  client$(client).connection?.on('errorMessage', (msg: { severity?: string; code?: string; message?: string }) =>
    listener(msg.severity ?? '', msg.code, msg.message ?? '')
  )
}

/**
 * Listen to NoticeResponse messages: an immediate shutdown or a crash tells each session so in a WARNING
 * (57P01, 57P02) just before its socket closes, not in an ErrorResponse.
 */
export function onNoticeMessage(client: Client, listener: (severity: string, code: string | undefined, message: string) => void): void {
  client$(client).connection?.on('notice', (msg: { severity?: string; code?: string; message?: string }) =>
    listener(msg.severity ?? '', msg.code, msg.message ?? '')
  )
}

/** What a session said about its server at login and since: in_hot_standby and default_transaction_read_only. */
export interface ReportedRole {
  inHotStandby: boolean
  readOnly: boolean
}

const reportedRoles = new WeakMap<Client, ReportedRole>()

/**
 * Follows a client's in_hot_standby / default_transaction_read_only reports (PostgreSQL 14+ sends both at
 * login and again when they change); `onChange` hears each complete report.
 */
export function followReportedRole(client: Client, onChange: (role: ReportedRole) => void): void {
  const seen: Partial<ReportedRole> = {}
  onParameterStatus(client, (name, value) => {
    if (name === 'in_hot_standby') seen.inHotStandby = value === 'on'
    else if (name === 'default_transaction_read_only') seen.readOnly = value === 'on'
    else return
    if (seen.inHotStandby === undefined) return
    const role = { inHotStandby: seen.inHotStandby, readOnly: seen.readOnly ?? false }
    reportedRoles.set(client, role)
    onChange(role)
  })
}

/** The role the session last reported, or null (not yet, or PostgreSQL < 14). */
export function reportedRoleOf(client: Client): ReportedRole | null {
  return reportedRoles.get(client) ?? null
}

/**
 * Fires once the client's Connection ended, which pg reports just before the client's own 'end': unlike
 * that, it survives an owner's removeAllListeners() on the client (pg-boss does that before end()).
 */
export function onConnectionEnd(client: Client, listener: () => void): void {
  client$(client).connection?.once('end', listener)
}

/** Fires once the client's TCP socket is connected, after pg applied its own keepAlive setting. */
export function onSocketConnected(client: Client, listener: () => void): void {
  client$(client).connection?.once('connect', listener)
}

/**
 * Remove an idle client the way pg-pool's idle timeout does ('remove' emitted, counters updated), then
 * destroy its socket: a graceful end() would wait for a FIN that a vanished peer never sends.
 */
export function evictIdle(pool: PgPool, client: Client): void {
  pool$(pool)._remove(client)
  rawSocketOf(client)?.destroy()
  client$(client).connection?.stream?.destroy()
}

/**
 * Destroy an in-use client's socket with `err`: pg rejects the running query with `err` at once and marks
 * the client unqueryable, so pg-pool removes it on release. (The client also emits `err`; the guard keeps
 * a listener on every client so that this never becomes an uncaught exception.)
 *
 * `perQuery`: each query in flight or queued gets its own error (in the order of in-flight.ts queriesOf),
 * built by the guard for what became of it. `reset`: called with the socket's fd first (the guard sets SO_LINGER to 0 there, so the
 * close sends an RST and no unacknowledged COMMIT is delivered late from an orphaned socket).
 */
export function destroyInUse(client: Client, err: Error, perQuery?: readonly Error[], reset?: (fd: number) => void): void {
  evictedWith.set(client, err)
  if (perQuery && perQuery.length > 0) failQueries(client, perQuery)
  const fd = reset ? fdOf(rawSocketOf(client)) : undefined
  if (fd !== undefined) reset!(fd)
  client$(client).connection?.stream?.destroy(err)
}

/** Clients the guard destroyed, and the error: a later query on one rejects with it (not pg's generic one). */
const evictedWith = new WeakMap<Client, Error>()

/** Whether the guard destroyed this client (its later errors are pg's echo of that, not news). */
export function evictedByGuard(client: Client): boolean {
  return evictedWith.has(client)
}

/**
 * Runs `fn` once the client has been idle (nothing in flight or queued) for `quietMs`, or at its first idle
 * moment after `maxWaitMs` (a busy client is never idle that long). Nothing happens for a client that ends.
 * For the guard's one query on a client its owner holds: sent where it stands in nobody's way, not even in
 * the way of a server's late stray message that pg must see with no query in flight.
 */
export function whenIdle(client: Client, fn: () => void, quietMs = 10, maxWaitMs = 1000): void {
  const c = client$(client)
  const q = c as unknown as { _queryQueue?: unknown[]; queryQueue?: unknown[] }
  // Outside a transaction block too: a query of ours first in a block would take its snapshot.
  const idle = (): boolean => !hasQueryInFlight(client) && (('_queryQueue' in q ? q._queryQueue : q.queryQueue)?.length ?? 0) === 0 && txStatusOf(client) !== 'T' && txStatusOf(client) !== 'E'
  const started = Date.now()
  const check = (): void => {
    if (c._ending || c._ended || c._queryable === false) return
    if (!idle()) return void client.once('drain', wait)
    if (Date.now() - started >= maxWaitMs) return fn()
    // Idle now: go if it stays idle for quietMs (pg's 'drain' in between means it was used meanwhile).
    let used = false
    const mark = (): void => {
      used = true
    }
    client.once('drain', mark)
    setTimeout(() => {
      client.off('drain', mark)
      if (!used && idle()) check2()
      else wait()
    }, quietMs).unref()
  }
  const check2 = (): void => {
    if (c._ending || c._ended || c._queryable === false) return
    if (idle()) fn()
    else wait()
  }
  const wait = (): void => {
    if (Date.now() - started >= maxWaitMs) {
      if (idle()) fn()
      else client.once('drain', () => check2())
      return
    }
    setImmediate(check)
  }
  setImmediate(check)
}

/** Abandon a connection attempt: its connect() fails with `err` (pg reports a stream error while connecting). */
export function failConnect(client: Client, err: Error): void {
  client$(client).connection?.stream?.destroy(err)
}

/**
 * End a client that never reached its caller (a rejected attempt) without pg calling it an unexpected
 * termination: no 'error' event, so no pool 'error' for a connection the user never had.
 */
export function endQuietly(client: Client): void {
  const c = client$(client)
  c._ending = true
  if (c.connection) c.connection._ending = true
  c.connection?.stream?.destroy()
}

/**
 * Mark an in-use client to be removed when it is released (instead of destroying it under its holder):
 * pg-pool removes a client whose use count reached maxUses.
 */
export function retireOnRelease(client: Client): void {
  client$(client)._poolUseCount = Infinity
}

/**
 * What the guard's `lookup` hook answered for `hostname`, checked: an array of IP address strings. A hook
 * that breaks the contract (resolves to something else, rejects with a non-Error, throws) gets a coded
 * error instead of a TypeError thrown where nobody catches it. Used by the connect path (below) and the
 * DNS loop (topology/topology.ts).
 */
export async function callLookup(lookup: (hostname: string) => unknown, hostname: string): Promise<string[]> {
  let answer: unknown
  try {
    answer = await lookup(hostname)
  } catch (err) {
    if (err instanceof Error) throw err
    throw new ConfigError(`guard.lookup rejected for ${hostname} with ${describe(err)}, not an Error`)
  }
  if (!Array.isArray(answer)) {
    throw new ConfigError(`guard.lookup resolved to ${describe(answer)} for ${hostname}; it must resolve to an array of IP addresses`)
  }
  answer.forEach((a, i) => {
    if (typeof a !== 'string' || isIP(a) === 0) {
      throw new ConfigError(`guard.lookup resolved ${hostname} to ${describe(a)} at [${i}]; it must resolve to an array of IP addresses`)
    }
  })
  return answer as string[]
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return String(v)
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}…` : v)
  if (typeof v === 'object') return Array.isArray(v) ? 'an array' : `an object (${Object.prototype.toString.call(v)})`
  return `${typeof v} ${String(v)}`
}

/**
 * A stream factory for pg whose sockets resolve host names through `lookup` (the guard's resolver hook),
 * so that pooled connections and the stale-DNS check see the same answers. Whatever the hook does, the
 * socket's callback is called exactly once, so the connect (and the query waiting on it) settles.
 */
export function lookupStream(lookup: (hostname: string) => Promise<string[]>): () => Socket {
  type LookupCallback = (err: Error | null, address?: string | { address: string; family: number }[], family?: number) => void
  const nodeLookup = (hostname: string, options: { all?: boolean; family?: number }, cb: LookupCallback): void => {
    callLookup(lookup, hostname).then(
      (addrs) => {
        const all = addrs.map((address) => ({ address, family: isIP(address) }))
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
    const connect = socket.connect.bind(socket) as (...args: unknown[]) => Socket
    ;(socket as { connect: unknown }).connect = (port: unknown, host?: unknown, ...rest: unknown[]) =>
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
    pool$(pool).newClient({
      callback: (err, client) => {
        client?.release()
        // A kept-warm client never keeps the process alive by itself (pg-pool refs it when it is handed out).
        ;(client as unknown as { unref?: () => void } | undefined)?.unref?.()
        resolve(err)
      },
    })
  })
}

export interface PoolHooks {
  /** The config a new client is built from, for the attempt `plan` listed (undefined: no plan); identity when absent. */
  clientConfig?(config: Record<string, unknown>, attempt: unknown): Record<string, unknown>
  /** A client object was just constructed by the pool (not connected yet), for `attempt`. */
  clientCreated(client: Client, attempt: unknown): void
  /**
   * Runs after a client connected and before the pool sees it (role and fencing checks). A rejection fails
   * the connection attempt: the client is ended quietly and the planner may try the next host.
   */
  afterConnect?(client: Client): Promise<void>
  /**
   * Before any attempt: an error to fail the new connection with at once (every host it could go to is
   * down), a promise of one (wait a bounded time for a host to come back first), or undefined to go ahead.
   * No client is built and no slot taken meanwhile.
   */
  admit?(): Error | Promise<Error | undefined> | undefined
  /** Connection attempts for one new client, in order; absent or one entry: pg-pool's single attempt. */
  plan?(): { target: unknown; label: string }[]
  /** Turns the failures of a multi-attempt connect into one error. */
  attemptsFailed?(failures: { label: string; error: Error }[]): Error
  /**
   * One host: after a failed attempt, how long to wait before the next one (no query was sent), or undefined
   * to fail the caller now. `elapsedMs` since the first attempt.
   */
  retryAfter?(err: Error, elapsedMs: number): number | undefined
  /** pool.connect() was called (also by pool.query); returns a tag to attach to the client it yields. */
  connectCalled?(): unknown
  /** The client pool.connect() yields, with the tag connectCalled returned. */
  clientYielded?(client: PoolClient, tag: unknown): void
  /** pool.connect() failed (a timeout, no host, ...). */
  connectFailed?(err: Error): void
  /** Lifetime in seconds for one new client, given the configured maxLifetimeSeconds. */
  lifetimeSeconds?(configured: number): number
  /**
   * An idle client is about to be handed out: false when the guard evicted it instead (the waiter then gets
   * the next idle client or a new connection). Absent: no check.
   */
  checkout?(client: Client): boolean
  /** A pooled client whose server identity was not read at login, back in the pool: read it now. */
  identityLater?(client: Client): void
  /** pool.end() was called. */
  ending(): void
  /** The error for callers still waiting for a client when the pool ends. */
  endedError?(): Error
}

/**
 * Where a guarded Client class finds its pool's hooks (set once the guard is built, after pg-pool's
 * constructor), and the attempt the next client is for: pg-pool builds the client synchronously inside
 * newClient, from the same options every time, so the attempt travels beside them.
 */
export class HookBinding {
  hooks: PoolHooks | undefined
  nextAttempt: unknown
}

const attempts = new WeakMap<Client, unknown>()

/** The attempt (host, port, required role) a client was built for, if the pool planned one. */
export function attemptOf(client: Client): unknown {
  return attempts.get(client)
}

/**
 * Whether the guard can see into a client: a pg.Client (any copy of pg 8) with its Connection and socket
 * stream. pg-native's client, or a test double given as pg-pool's `Client` option, is not: such clients
 * work in the pool as they would in pg.Pool, untracked.
 */
export function canSeeInto(client: unknown): client is Client {
  const c = client as { once?: unknown; connection?: { on?: unknown; stream?: unknown } } | null
  return typeof c?.once === 'function' && typeof c.connection?.on === 'function' && typeof c.connection.stream === 'object' && c.connection.stream !== null
}

type Query = (...args: unknown[]) => unknown

/**
 * client.query() for a client the guard evicted while its holder was between queries: the coded eviction
 * error, as a query in flight would have had, instead of pg's "not queryable". Otherwise pg's own query().
 */
function guardedQuery(self: Client, original: Query, args: unknown[]): unknown {
  const err = evictedWith.get(self)
  const last = args[args.length - 1]
  if (err === undefined || (typeof args[0] === 'object' && args[0] !== null && typeof (args[0] as { submit?: unknown }).submit === 'function')) {
    return original.apply(self, args)
  }
  // A query sent after the eviction never left the client: its own error says so.
  const own = err instanceof ConnectionEvictedError ? err.withOutcome('not-sent') : err
  if (typeof last === 'function') {
    process.nextTick(() => (last as (e: Error) => void)(own))
    return undefined
  }
  return Promise.reject(own)
}

/**
 * The hot path (every query): pg's query() at once unless the guard evicted this client; pg's query takes
 * at most three arguments (text or config, values, callback), so no argument array is built.
 */
function queryFast(self: Client, original: Query, a: unknown, b: unknown, c: unknown, n: number): unknown {
  if (!evictedWith.has(self)) return n <= 1 ? original.call(self, a) : n === 2 ? original.call(self, a, b) : original.call(self, a, b, c)
  return guardedQuery(self, original, n <= 1 ? [a] : n === 2 ? [a, b] : [a, b, c])
}

/** connect() with a check after login: a rejection ends the client quietly and fails the connect with it. */
function connectThen(self: Client, connect: (cb: (err?: Error) => void) => void, afterConnect: (c: Client) => Promise<void>, callback?: (err?: Error) => void): Promise<unknown> | undefined {
  // The owner's Promise class (pg's `Promise` option, e.g. bluebird): connect() returns one of its promises.
  const P = (client$(self) as unknown as { _Promise?: PromiseConstructor })._Promise ?? Promise
  const run = new P<void>((resolve, reject) => connect((err) => (err ? reject(err) : resolve())))
    .then(() => afterConnect(self))
    .catch((err: Error) => {
      endQuietly(self)
      throw err
    })
  if (callback) {
    run.then(() => callback(), callback)
    return undefined
  }
  return run.then(() => self)
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
  const baseQuery = (Base.prototype as unknown as { query: Query }).query
  class GuardedClient extends (Base as unknown as LooseClient) {
    query(a?: unknown, b?: unknown, c?: unknown): unknown {
      return queryFast(this as unknown as Client, baseQuery, a, b, c, arguments.length)
    }

    constructor(config?: Record<string, unknown>, ...rest: unknown[]) {
      const hooks = binding.hooks
      const attempt = binding.nextAttempt
      binding.nextAttempt = undefined
      super(hooks?.clientConfig && config ? hooks.clientConfig(config, attempt) : config, ...rest)
      if (!canSeeInto(this)) {
        onUnguarded()
        return
      }
      if (attempt !== undefined) attempts.set(this, attempt)
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
  const baseQuery = (Base.prototype as unknown as { query: Query }).query
  const configs = new WeakMap<object, unknown>()
  class Client extends (Base as unknown as LooseClient) {
    query(a?: unknown, b?: unknown, c?: unknown): unknown {
      return queryFast(this as unknown as PgClient, baseQuery, a, b, c, arguments.length)
    }

    constructor(config?: unknown, ...rest: unknown[]) {
      check(config)
      super(config, ...rest)
      configs.set(this, config)
    }

    override connect(callback?: (err?: Error) => void): Promise<unknown> | undefined {
      const afterConnect = canSeeInto(this) ? join(this, configs.get(this))?.afterConnect : undefined
      if (!afterConnect) return super.connect(callback)
      return connectThen(this as unknown as PgClient, (cb) => void super.connect(cb), afterConnect, callback)
    }
  }
  Object.defineProperty(Client, BASE_CLASS, { value: Base })
  return Client as unknown as ClientClass
}

/**
 * For guardClient(existingClient): the same coded error after an eviction as the guarded classes give,
 * as an own `query` on this one instance (its class stays the user's).
 */
export function guardQueriesOf(client: Client): void {
  const original = (client as unknown as { query: Query }).query
  Object.defineProperty(client, 'query', {
    configurable: true, writable: true, enumerable: false,
    value: function query(this: Client, ...args: unknown[]): unknown {
      return guardedQuery(this, original, args)
    },
  })
}

/** Where a client is in its connect: not started, under way, or done (and not ended since). */
export function connectStageOf(client: Client): 'new' | 'connecting' | 'connected' | 'ended' {
  const c = client$(client)
  if (c._ended || c._ending) return 'ended'
  if (c._connected) return 'connected'
  if (c._connecting) return 'connecting'
  return 'new'
}

/** What pg resolved for the client: host, port, user, database, password, ssl, ... (holds secrets: never log it). */
export function connectionParametersOf(client: Client): Record<string, unknown> {
  return client$(client).connectionParameters ?? { host: client.host, port: client.port }
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
   * pg-pool hands out a client. One taken from the idle list (isNew false) is checked first; one the guard
   * evicted instead is never handed out: the waiter goes back to the head of the queue and the queue is
   * pulsed, so it gets the next idle client or a new connection (its slot was freed), never an error for it.
   */
  acquireClient(pool: PgPool, hooks: PoolHooks, orig: AcquireClient, client: Client, item: PendingItem, idleListener: unknown, isNew: boolean): unknown {
    const checkout = hooks.checkout
    if (!checkout || isNew !== false || checkout(client)) return orig(client, item, idleListener, isNew)
    const p = pool$(pool)
    if (!item.timedOut) p._pendingQueue.unshift(item)
    p._pulseQueue()
    return undefined
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

/** For guard(existingPool): the guarded Client class and the five wrappers, assigned onto the instance. */
export function patchPool(pool: PgPool, hooks: PoolHooks, onUnguarded?: () => void): void {
  const p = pool$(pool)
  const binding = new HookBinding()
  binding.hooks = hooks
  p.Client = guardedClientClass(p.Client, binding, onUnguarded)
  const newClient = p.newClient.bind(p)
  p.newClient = (item) => wrap.newClient(pool, binding, newClient, item)
  const connect = p.connect.bind(p)
  p.connect = (cb) => wrap.connect(hooks, connect, cb)
  const end = p.end.bind(p)
  p.end = (...args) => wrap.end(pool, hooks, end, args)
  const afterConnect = p._afterConnect.bind(p)
  p._afterConnect = (...args) => wrap.afterConnect(pool, hooks, afterConnect, args)
  const acquireClient = p._acquireClient.bind(p) as AcquireClient
  p._acquireClient = (client: Client, item: PendingItem, idleListener: unknown, isNew: boolean) => wrap.acquireClient(pool, hooks, acquireClient, client, item, idleListener, isNew)
}
