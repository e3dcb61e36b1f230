/**
 * pg's and pg-pool's private fields, typed, and the primitive acts on a client — the only place (with
 * in-flight.ts, client-classes.ts and pool-wrappers.ts beside it) that reads or changes pg internals, so a pg
 * upgrade that moves a field breaks this folder and the integration tests say which function. pg 8.x,
 * pg-pool 3.x.
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
 *
 * What the library keeps per client lives on the client itself, in one object (its ClientSlot: the guard's
 * record of the client, guard/registry.ts), under a symbol: no side maps.
 */
import type { EventEmitter } from 'node:events'
import type { Socket } from 'node:net'
import type { Client, Pool as PgPool, PoolClient } from 'pg'

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
  _release(client: Client, idleListener: unknown, err: unknown): unknown
  newClient(item: PendingItem): void
  connect(cb?: PendingItem['callback']): Promise<PoolClient> | undefined
  end(...args: unknown[]): unknown
  _afterConnect(...args: unknown[]): unknown
}

/** pg-pool's _acquireClient(client, pendingItem, idleListener, isNew). */
export type AcquireClient = (client: Client, item: PendingItem, idleListener: unknown, isNew: boolean) => unknown

export type ClientClass = new (config?: Record<string, unknown>, ...rest: unknown[]) => Client

export const client$ = (c: Client): PgClientInternals => c as unknown as PgClientInternals
export const pool$ = (p: PgPool): PgPoolInternals => p as unknown as PgPoolInternals

/** The transaction status of the last ReadyForQuery: 'I' idle, 'T' in a block, 'E' in a failed block; null unknown. */
export type TxStatus = 'I' | 'T' | 'E' | null

/** resolveInDoubt's tracking of one client's transaction id, kept on its slot (in-flight.ts). */
export interface XidState {
  /** The current transaction's id, once learnt (null until then, and after the transaction ended). */
  xid: string | null
  /** 0 nothing injected; 1 the statement's answer is still due; 2 taking ours off the connection. */
  phase: 0 | 1 | 2
  pending: string | null
}

/** What a server says of itself (in_hot_standby and default_transaction_read_only, or their SQL fallbacks). */
export interface ServerRole {
  inHotStandby: boolean
  readOnly: boolean
}

/**
 * What this library keeps per client, on the client (guard/registry.ts ConnRecord is this object, with the
 * guard's own fields): the attempt it was built for, the role its session reported, and what in-flight.ts
 * tracks where pg does not.
 */
export interface ClientSlot {
  /** The attempt (host, port, required role) the client was built for, if the pool planned one. */
  attempt: unknown
  /** The role the session last reported (ParameterStatus, PostgreSQL 14+), and when; null until then. */
  reportedRole: ServerRole | null
  reportedRoleAt: number | null
  /** For pg copies that do not keep it: the last ReadyForQuery's status (in-flight.ts). */
  txStatus: TxStatus
  /** resolveInDoubt: the transaction id tracking (in-flight.ts), when on. */
  xid: XidState | undefined
}

const SLOT = Symbol('pg-pool-guard.slot')

/** The client's slot, once the guard attached one (a client it tracks). */
export function slotOf(client: Client): ClientSlot | undefined {
  return (client as unknown as Record<symbol, ClientSlot | undefined>)[SLOT]
}

/** Non-enumerable: a logger that serialises or inspects the client does not walk into the guard's record. */
export function attachSlot(client: Client, slot: ClientSlot): void {
  Object.defineProperty(client, SLOT, { value: slot, writable: true, configurable: true, enumerable: false })
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

/** Whether pg-pool holds the client in its idle list now (for a pool the guard joined already holding clients). */
export function isIdleInPool(pool: PgPool, client: Client): boolean {
  return pool$(pool)._idle.some((item) => item.client === client)
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

/**
 * Follows a client's in_hot_standby / default_transaction_read_only reports (PostgreSQL 14+ sends both at
 * login and again when they change), kept on its slot; `onChange` hears each complete report.
 */
export function followReportedRole(client: Client, onChange: (role: ServerRole) => void): void {
  const seen: Partial<ServerRole> = {}
  onParameterStatus(client, (name, value) => {
    if (name === 'in_hot_standby') seen.inHotStandby = value === 'on'
    else if (name === 'default_transaction_read_only') seen.readOnly = value === 'on'
    else return
    if (seen.inHotStandby === undefined) return
    const role = { inHotStandby: seen.inHotStandby, readOnly: seen.readOnly ?? false }
    const slot = slotOf(client)
    if (slot) {
      slot.reportedRole = role
      slot.reportedRoleAt = Date.now()
    }
    onChange(role)
  })
}

/** The role the session last reported, or null (not yet, or PostgreSQL < 14). */
export function reportedRoleOf(client: Client): ServerRole | null {
  return slotOf(client)?.reportedRole ?? null
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
export function removeIdle(pool: PgPool, client: Client): void {
  pool$(pool)._remove(client)
  rawSocketOf(client)?.destroy()
  client$(client).connection?.stream?.destroy()
}


/**
 * Connects one of the guard's own clients (host monitors, promotion watches, address checks, the in-doubt
 * resolver): its socket is unref'd as soon as it exists, so the guard's own connections never keep a
 * process alive.
 */
export function connectOwn(client: Client): Promise<unknown> {
  const connecting = client.connect()
  rawSocketOf(client)?.unref()
  return connecting
}

/**
 * The guard's own connections (host monitors, promotion watches, probes, address checks, the in-doubt
 * resolver) are closed here, never through the evictor, which is for the clients of the pool's owner.
 */
export function closeOwn(client: Client, why: Error): void {
  client$(client).connection?.stream?.destroy(why)
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

/**
 * Whether the guard can see into a client: a pg.Client (any copy of pg 8) with its Connection and socket
 * stream. pg-native's client, or a test double given as pg-pool's `Client` option, is not: such clients
 * work in the pool as they would in pg.Pool, untracked.
 */
export function canSeeInto(client: unknown): client is Client {
  const c = client as { once?: unknown; connection?: { on?: unknown; stream?: unknown } } | null
  return typeof c?.once === 'function' && typeof c.connection?.on === 'function' && typeof c.connection.stream === 'object' && c.connection.stream !== null
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
