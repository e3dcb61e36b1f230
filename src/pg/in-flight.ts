/**
 * The queries on a client and what became of them — pg internals, kept in this folder like the rest:
 *
 * - The transaction status of the last ReadyForQuery ('I', 'T', 'E'): pg 8.16+ keeps it (`_txStatus`);
 *   for older copies a listener records it (`trackTxStatus`, installed only there).
 * - The queries sent and not answered (pg's active query, then its pipeline's sent queue) and those still
 *   queued in the client (`queriesOf`): `failQueries` fails each with its own error — built by the guard for
 *   its own outcome (judge/outcome-rules.ts) — instead of pg's one error for all.
 * - With resolveInDoubt: the transaction's id, learnt without a round trip of its own (`trackXid`). After a
 *   statement that may write is sent inside a transaction block whose id is not known yet, one more simple
 *   query — `SELECT txid_current_if_assigned()` — is written right behind it, in the same flight; its
 *   answer arrives right after the statement's and is taken off the connection before pg sees it. Once the
 *   id is known nothing more is sent until the transaction ends. So a COMMIT lost on the way can later be
 *   looked up with txid_status().
 * - Acting on them: `destroyInUse` (each query its own error, later ones a not-sent copy, the socket
 *   destroyed) and `whenIdle` (the guard's one query on a client its owner holds, sent when nothing is).
 */
import type { Client } from 'pg'
import { ConnectionEvictedError } from '../errors'
import { client$, fdOf, hasQueryInFlight, rawSocketOf, slotOf, type TxStatus, type XidState } from './internals'

export type { TxStatus, XidState }

interface PgQuery {
  text?: unknown
  rows?: unknown
  handleError(err: Error, connection: unknown): void
}

interface Internals {
  connection?: { stream?: { write(b: Buffer): boolean }; emit: (name: string, ...args: unknown[]) => boolean; on(e: string, f: (m: { status?: string }) => void): void }
  _txStatus?: string | null
  _activeQuery?: PgQuery | null
  activeQuery?: PgQuery | null
  _sentQueryQueue?: PgQuery[]
  _queryQueue?: PgQuery[]
  queryQueue?: PgQuery[]
  readyForQuery?: boolean
  pipeline?: boolean
}

const $ = (c: Client): Internals => c as unknown as Internals



const keeps = new WeakMap<object, boolean>()

/** Whether this copy of pg keeps the transaction status itself (it sets _txStatus in _handleReadyForQuery). */
export function keepsTxStatus(ClientClass: unknown): boolean {
  if (typeof ClientClass !== 'function') return false
  let k = keeps.get(ClientClass)
  if (k === undefined) {
    const handler = (ClientClass as { prototype?: { _handleReadyForQuery?: unknown } }).prototype?._handleReadyForQuery
    keeps.set(ClientClass, (k = typeof handler === 'function' && handler.toString().includes('_txStatus')))
  }
  return k
}

/** For a pg copy that does not keep it: record each ReadyForQuery's status. */
export function trackTxStatus(client: Client): void {
  const slot = slotOf(client)
  if (!slot) return
  $(client).connection?.on('readyForQuery', (m) => {
    slot.txStatus = statusOf(m.status)
  })
}

export function txStatusOf(client: Client): TxStatus {
  const c = $(client)
  return '_txStatus' in c ? statusOf(c._txStatus) : (slotOf(client)?.txStatus ?? null)
}

function statusOf(s: unknown): TxStatus {
  return s === 'I' || s === 'T' || s === 'E' ? s : null
}

function activeOf(c: Internals): PgQuery | null {
  // Newer pg keeps _activeQuery (and a deprecated getter under the old name); pg 8.11 only activeQuery.
  return ('_activeQuery' in c ? c._activeQuery : c.activeQuery) ?? null
}

/** The queries sent and not answered yet, oldest first: pg's active query, then its pipeline's sent queue. */
function sentOf(c: Internals): PgQuery[] {
  const active = activeOf(c)
  return [...(active ? [active] : []), ...(c._sentQueryQueue ?? [])]
}

/** The queries waiting in the client, not sent yet. */
function queueOf(c: Internals): PgQuery[] | undefined {
  // Newer pg keeps _queryQueue (and a deprecated getter under the old name, which warns); pg 8.11 queryQueue.
  return '_queryQueue' in c ? c._queryQueue : c.queryQueue
}

function textOf(q: PgQuery): string | null {
  return typeof q.text === 'string' ? q.text : null
}

/** What is on a client now: the last ReadyForQuery's status, the texts of the queries sent and unanswered (oldest first; null where a query has no text) and how many are queued. */
export function queriesOf(client: Client): { status: TxStatus; sent: (string | null)[]; queued: number } {
  const c = $(client)
  return { status: txStatusOf(client), sent: sentOf(c).map(textOf), queued: queueOf(c)?.length ?? 0 }
}

/**
 * Fails every query on `client` — sent and unanswered first, then queued, the order of queriesOf() — the
 * i-th with `errors[i]`, as pg's own _errorAllQueries would (on the next tick), and empties pg's queues so
 * that the socket error that follows fails nothing twice.
 */
export function failQueries(client: Client, errors: readonly Error[]): void {
  const c = $(client)
  const queue = queueOf(c)
  const queries = [...sentOf(c), ...(queue ?? [])]
  if (queries.length === 0) return
  if ('_activeQuery' in c) c._activeQuery = null
  else c.activeQuery = null
  if (c._sentQueryQueue) c._sentQueryQueue.length = 0
  if (queue) queue.length = 0
  const connection = c.connection
  queries.forEach((q, i) => {
    const err = errors[i] ?? errors[errors.length - 1]
    if (err) process.nextTick(() => q.handleError(err, connection))
  })
}

/** Messages of our own xid query, taken off the connection before pg sees them. */
const OURS = new Set(['parseComplete', 'bindComplete', 'noData', 'rowDescription', 'dataRow', 'commandComplete', 'emptyQuery', 'errorMessage', 'readyForQuery', 'portalSuspended'])

/**
 * resolveInDoubt: learn each transaction's id (see the file's header). Installed once per client, when it is
 * built: its own `query` (in front of the class's) and its connection's `emit`, so that a pool without the
 * option pays nothing for it.
 */
export function trackXid(client: Client, mayWrite: (text: string) => boolean): void {
  const c = $(client)
  const con = c.connection
  const slot = slotOf(client)
  if (!con || !slot) return
  const st: XidState = { xid: null, phase: 0, pending: null }
  slot.xid = st
  const query = (client as unknown as { query: (...a: unknown[]) => unknown }).query
  Object.defineProperty(client, 'query', {
    configurable: true, writable: true, enumerable: false,
    value: function (this: Client, ...args: unknown[]): unknown {
      const ready = c.readyForQuery === true
      const status = txStatusOf(this)
      const result = query.apply(this, args)
      afterQuerySent(this, ready, status, mayWrite)
      return result
    },
  })
  const emit = con.emit
  con.emit = function (this: unknown, name: string, ...args: unknown[]): boolean {
    if (st.phase === 2 && OURS.has(name)) {
      const msg = args[0] as { fields?: (string | null)[]; status?: string }
      if (name === 'dataRow') st.pending = msg.fields?.[0] ?? null
      else if (name === 'readyForQuery') {
        st.phase = 0
        st.xid = msg.status === 'I' ? null : (st.pending ?? st.xid)
        st.pending = null
      }
      return true
    }
    if (name === 'readyForQuery') {
      if (st.phase === 1) st.phase = 2 // the statement's own answer: pg's; ours follows
      else if ((args[0] as { status?: string }).status === 'I') st.xid = null
    }
    return emit.call(this, name, ...args)
  } as typeof con.emit
}

let serializeQuery: ((text: string) => Buffer) | undefined
const XID_SQL = 'SELECT txid_current_if_assigned()::text'

/**
 * Right after the owner's query() returned (`mayWrite`: judge/outcome-rules.ts, handed in by the guard): if it put a statement on the wire that may write, inside a
 * transaction block whose id is not known, write the xid query behind it. `wasReady`: the client was
 * ready for a query before the call (so what is active now was sent by it).
 */
function afterQuerySent(client: Client, wasReady: boolean, statusBefore: TxStatus, mayWrite: (text: string) => boolean): void {
  const st = slotOf(client)?.xid
  if (!st || st.phase !== 0 || st.xid !== null || !wasReady || statusBefore !== 'T') return
  const c = $(client)
  if (c.pipeline) return
  const q = activeOf(c)
  const QueryClass = (client.constructor as { Query?: new (...a: unknown[]) => unknown }).Query
  // Only a plain query that completes in one flight: a portal (rows, cursors, streams) must not be followed.
  if (!q || !QueryClass || !(q instanceof QueryClass) || q.rows !== undefined || typeof q.text !== 'string' || !mayWrite(q.text)) return
  serializeQuery ??= loadSerializer()
  const stream = c.connection?.stream
  if (!stream) return
  st.phase = 1
  stream.write(serializeQuery(XID_SQL))
}

/** The transaction id learnt for the client's current (or just evicted) transaction, if any. */
export function xidOf(client: Client): string | null {
  return slotOf(client)?.xid?.xid ?? null
}

function loadSerializer(): (text: string) => Buffer {
  const { dirname } = require('node:path') as typeof import('node:path')
  const path = require.resolve('pg-protocol', { paths: [dirname(require.resolve('pg'))] })
  const { serialize } = require(path) as { serialize: { query(text: string): Buffer } }
  return (text) => serialize.query(text)
}

/**
 * Destroy an in-use client's socket with `err`: pg rejects the running query with `err` at once and marks
 * the client unqueryable, so pg-pool removes it on release. (The client also emits `err`; the guard keeps
 * a listener on every client so that this never becomes an uncaught exception.) A query its holder sends
 * afterwards gets a copy of `err` that says it was not sent, not pg's generic "not queryable".
 *
 * `perQuery`: each query in flight or queued gets its own error (in the order of in-flight.ts queriesOf),
 * built by the guard for what became of it. `reset`: called with the socket's fd first (the guard sets
 * SO_LINGER to 0 there, so the close sends an RST and no unacknowledged COMMIT is delivered late from an
 * orphaned socket).
 */
export function destroyInUse(client: Client, err: Error, perQuery?: readonly Error[], reset?: (fd: number) => void): void {
  rejectLaterQueries(client, err)
  if (perQuery && perQuery.length > 0) failQueries(client, perQuery)
  const fd = reset ? fdOf(rawSocketOf(client)) : undefined
  if (fd !== undefined) reset!(fd)
  client$(client).connection?.stream?.destroy(err)
}

/**
 * From now on, `client.query()` rejects (or calls back) with a not-sent copy of `err`, as an own property of
 * this one client: the class's query() stays pg's own, so the guard costs no query anything.
 * Submittables (cursors, streams) go to pg, which fails them as not queryable.
 */
function rejectLaterQueries(client: Client, err: Error): void {
  const original = (client as unknown as { query: (...a: unknown[]) => unknown }).query
  const own = err instanceof ConnectionEvictedError ? err.withOutcome('not-sent') : err
  Object.defineProperty(client, 'query', {
    configurable: true, writable: true, enumerable: false,
    value: function query(this: Client, ...args: unknown[]): unknown {
      const first = args[0] as { submit?: unknown } | null | undefined
      if (typeof first === 'object' && first !== null && typeof first.submit === 'function') return original.apply(this, args)
      const last = args[args.length - 1]
      if (typeof last === 'function') {
        process.nextTick(() => (last as (e: Error) => void)(own))
        return undefined
      }
      return Promise.reject(own)
    },
  })
}

/**
 * Runs `fn` once the client has been idle (nothing in flight or queued) for `quietMs`, or at its first idle
 * moment after `maxWaitMs` (a busy client is never idle that long). Nothing happens for a client that ends.
 * For the guard's one query on a client its owner holds: sent where it stands in nobody's way, not even in
 * the way of a server's late stray message that pg must see with no query in flight.
 */
export function whenIdle(client: Client, fn: () => void, quietMs = 10, maxWaitMs = 1000): void {
  const c = client$(client)
  // Outside a transaction block too: a query of ours first in a block would take its snapshot.
  const idle = (): boolean => !hasQueryInFlight(client) && (queueOf($(client))?.length ?? 0) === 0 && txStatusOf(client) !== 'T' && txStatusOf(client) !== 'E'
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
