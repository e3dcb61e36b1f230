/**
 * One record per client, from the moment pg-pool builds it until it is gone, kept on the client itself
 * (pg/internals.ts: the record is the client's slot, under a symbol) — no side maps. Private to the guard:
 * the public view is `snapshot()` (plain data). Every field changes through a method of this class, and the
 * state only through `transition()`, which also starts and stops the state's timers and tells the guard
 * (metrics, follow-up work): postgres.js's one state per connection is the model.
 *
 *   connecting --(login)--> idle <--(acquire / release)--> in-use --(condemned, left to finish)--> retiring
 *        \                    \                              \                                      |
 *         `----------------(verdict: acted on at once)--------`---------------> evicting ---------- `--> ended
 *
 * connecting covers the TCP handshake, TLS, the startup packet, authentication and the check after login
 * (a deadline timer runs there); retiring is an in-use client condemned to leave when released (or, for a
 * client its owner holds, once its query settles); ended records leave the registry. The pool itself has
 * a state too: open, ending (end() was called, sockets may still be closing), ended.
 */
import type { Socket } from 'node:net'
import type { Client } from 'pg'
import type { KernelSample } from '../kernel/sample'
import { tcpStateName } from '../kernel/tcp-info'
import type { VerdictKind } from '../judge/verdicts'
import { attachSlot, type ClientSlot, slotOf } from '../pg/internals'
import type { SocketOptionsReport } from '../socket/harden'
import { type Attempt, hostKey, type ServerRole } from '../topology/hosts'
import type { ServerIdentity, SessionIdentity } from '../topology/identity'

export interface VerdictRecord {
  kind: VerdictKind
  evidence: string
  at: number
  firstEvidenceAt: number
  /** The client was in use when condemned (counted so when it leaves). */
  inUse: boolean
}

export type ConnState = 'connecting' | 'idle' | 'in-use' | 'retiring' | 'evicting' | 'ended'

export type PoolState = 'open' | 'ending' | 'ended'

export interface ConnRecord extends Readonly<ClientSlot> {
  /** Sequential per guard, stable for the life of the client. */
  readonly id: number
  readonly client: Client
  readonly socket: Socket | undefined
  readonly state: ConnState
  readonly configuredHost: string
  readonly configuredPort: number
  /** `configuredHost:configuredPort` (topology/hosts.ts hostKey): the key of the host in the topology. */
  readonly hostKey: string
  /** 'tcp', or 'unix' for a Unix-domain socket (no TCP_INFO: no kernel verdicts), null until connected. */
  readonly transport: 'tcp' | 'unix' | null
  readonly remoteAddress: string | null
  readonly remotePort: number | null
  readonly localAddress: string | null
  readonly localPort: number | null
  readonly family: 'IPv4' | 'IPv6' | null
  /** The socket's file descriptor, once connected (read once: every reader takes it from here). */
  readonly fd: number | null
  /** Socket inode, from /proc/self/fd/<fd> -> socket:[inode]; the key into /proc/net/tcp. */
  readonly inode: number | null
  readonly backendPid: number | null
  /** From guard.regions, or null. */
  readonly region: string | null
  readonly socketOptions: SocketOptionsReport | null
  readonly createdAt: number
  readonly lastAcquiredAt: number | null
  readonly lastReleasedAt: number | null
  readonly uses: number
  /** The latest kernel sample (TCP_INFO or /proc row). */
  readonly kernel: KernelSample | null
  /** Why the guard evicted it, with the evidence. */
  readonly verdict: VerdictRecord | null
  /** Set by the /proc cross-check when the fd no longer leads to this socket. */
  readonly goneReason: string | null
  /** The connection attempt this client was made for (host, port, required role). */
  readonly attempt: Attempt | null
  /**
   * The server this session reached, read once (topology/identity.ts), and when: behind a VIP or a load
   * balancer, which server the address led to. Null until read, or where it could not be.
   */
  readonly server: ServerIdentity | null
  readonly serverAt: number | null
  /** A pooler answers in front (PgBouncer, RDS Proxy, ...): the session's server changes per transaction. */
  readonly pooler: boolean | null
  /** Its identity was not read at login and has been asked for since (once: back in the pool). */
  readonly identityAsked: boolean
  /** Stack of the code that acquired it, kept only when leak detection is on. */
  readonly acquiredStack: string | null
  readonly leakReported: boolean
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/** The kernel sample as plain JSON-safe data. */
export interface KernelSnapshot extends Omit<KernelSample, 'bytesReceived' | 'bytesAcked'> {
  stateName: string
  bytesReceived: number | null
  bytesAcked: number | null
}

/** A record as `snapshot()` returns it: plain data (JSON-safe), no client or socket object, no secrets. */
export type ConnSnapshot = Omit<
  ConnRecord,
  'client' | 'socket' | 'hostKey' | 'acquiredStack' | 'leakReported' | 'kernel' | 'goneReason' | 'attempt' | 'serverAt' | 'identityAsked' | 'reportedRole' | 'reportedRoleAt' | 'txStatus' | 'xid'
> & {
  /** 'primary' or 'standby', as the session reported it (in_hot_standby), or null until known. */
  role: 'primary' | 'standby' | null
  /** default_transaction_read_only of the session. */
  readOnly: boolean | null
  /** The server's timeline, as the topology last read it. */
  timeline: number | null
  kernel: KernelSnapshot | null
}

/** What the socket looked like once connected. */
export interface SocketIdentity {
  socket: Socket
  transport: 'tcp' | 'unix'
  fd: number | undefined
  inode: number | null
  region: string | null
  socketOptions: SocketOptionsReport | null
}

export interface RegistryHooks {
  /** After every change of state but idle <-> in-use (metrics, follow-up work). */
  transitioned(rec: ConnRecord, from: ConnState, now: number): void
  /** In-use -> idle, when something reads it (use-time metric): set only then, so a release costs nothing else. */
  released?: (rec: ConnRecord, now: number) => void
  /** A connecting record's deadline timer fired (armed on entering 'connecting', cleared on leaving it). */
  connectDeadline(rec: ConnRecord, now: number, deadlineMs: number): void
}

export class Registry {
  private readonly all = new Set<Mutable<ConnRecord>>()
  private readonly timers = new Map<number, NodeJS.Timeout>()
  private nextId = 1
  /** Bumped when something the topology rules read changes (a socket joined, a role report). */
  version = 0
  /** The pool's own state. */
  pool: PoolState = 'open'

  constructor(
    readonly hooks: RegistryHooks,
    /** How long a connection may stay 'connecting'; 0: no deadline. */
    readonly connectDeadlineMs: () => number
  ) {}

  add(client: Client, configuredHost: string, configuredPort: number, attempt: Attempt | null, now: number): ConnRecord {
    const rec: Mutable<ConnRecord> = {
      id: this.nextId++, client, socket: undefined, state: 'connecting', configuredHost, configuredPort, hostKey: hostKey({ host: configuredHost, port: configuredPort }), transport: null,
      remoteAddress: null, remotePort: null, localAddress: null, localPort: null, family: null, fd: null, inode: null,
      backendPid: null, region: null, socketOptions: null, reportedRole: null, reportedRoleAt: null,
      attempt, kernel: null, verdict: null, goneReason: null, createdAt: now, lastAcquiredAt: null, lastReleasedAt: null,
      uses: 0, acquiredStack: null, leakReported: false, server: null, serverAt: null, pooler: null, identityAsked: false,
      txStatus: null, xid: undefined,
    }
    this.all.add(rec)
    attachSlot(client, rec)
    this.arm(rec, now)
    return rec
  }

  /** The record of a client this registry tracks (on the client itself: no lookup), until it ended. */
  get(client: Client): ConnRecord | undefined {
    const rec = slotOf(client) as ConnRecord | undefined
    return rec !== undefined && rec.state !== 'ended' ? rec : undefined
  }

  records(): ConnRecord[] {
    return [...this.all]
  }

  /**
   * The one place a record's state changes; 'ended' removes it. idle <-> in-use is the hot path (every
   * checkout): it sets what it must and calls nothing unless a use-time metric is bound.
   */
  transition(record: ConnRecord, to: ConnState, now: number): void {
    const rec = record as Mutable<ConnRecord>
    const from = rec.state
    // Small enough to be inlined into the hand-out and take-back: every other change is in move().
    if (to === 'in-use' && from === 'idle') {
      rec.state = 'in-use'
      rec.lastAcquiredAt = now
      rec.uses++
      rec.leakReported = false
    } else if (to === 'idle' && from === 'in-use') {
      rec.state = 'idle'
      rec.lastReleasedAt = now
      rec.acquiredStack = null
      if (this.hooks.released !== undefined) this.hooks.released(rec, now)
    } else if (from !== to && from !== 'ended') {
      this.move(rec, from, to, now)
    }
  }

  private move(rec: Mutable<ConnRecord>, from: ConnState, to: ConnState, now: number): void {
    // A condemned client only ever leaves: evicting ends; retiring is evicted or ends.
    if (from === 'evicting' && to !== 'ended') return
    if (from === 'retiring' && to !== 'evicting' && to !== 'ended') return
    rec.state = to
    if (from === 'connecting') this.disarm(rec)
    if (to === 'in-use') {
      rec.lastAcquiredAt = now
      rec.uses++
      rec.leakReported = false
    } else if (to === 'ended') {
      this.all.delete(rec)
    }
    if (from === 'connecting' && (to === 'idle' || to === 'in-use')) this.version++ // a new socket to judge
    this.hooks.transitioned(rec, from, now)
  }

  /** The pool's own state: open, then ending (end() called), then ended (its last socket gone). */
  poolTransition(to: PoolState): boolean {
    if (this.pool === 'ended' || this.pool === to || (this.pool === 'ending' && to === 'open')) return false
    this.pool = to
    return true
  }

  /** The stream pg will connect, before it is connected: its TCP handshake is watched too. */
  attachStream(record: ConnRecord, stream: Socket, transport: 'tcp' | 'unix'): void {
    const rec = record as Mutable<ConnRecord>
    rec.socket = stream
    rec.transport = transport
  }

  attachSocket(record: ConnRecord, id: SocketIdentity): void {
    const rec = record as Mutable<ConnRecord>
    const s = id.socket
    rec.socket = s
    rec.transport = id.transport
    rec.remoteAddress = s.remoteAddress ?? null
    rec.remotePort = s.remotePort ?? null
    rec.localAddress = s.localAddress ?? null
    rec.localPort = s.localPort ?? null
    rec.family = (s.remoteFamily as 'IPv4' | 'IPv6' | undefined) ?? null
    rec.fd = id.fd ?? null
    rec.inode = id.inode
    rec.region = id.region
    rec.socketOptions = id.socketOptions
    this.version++
  }

  noteBackend(record: ConnRecord, pid: number | null): void {
    ;(record as Mutable<ConnRecord>).backendPid = pid
  }

  /** The session reported its role (pg/internals.ts followReportedRole keeps it on the record already): topology rules look again. */
  noteRole(record: ConnRecord, role: ServerRole, at: number): void {
    const rec = record as Mutable<ConnRecord>
    rec.reportedRole = role
    rec.reportedRoleAt = at
    this.version++
  }

  /** What the session's identity query said (null: not read), and whether a pooler answers in front. */
  noteIdentity(record: ConnRecord, identity: SessionIdentity | null, pooler: boolean, at: number): void {
    const rec = record as Mutable<ConnRecord>
    rec.server = identity?.server ?? null
    rec.serverAt = identity ? at : null
    rec.pooler = pooler
    this.version++
  }

  noteIdentityAsked(record: ConnRecord): void {
    ;(record as Mutable<ConnRecord>).identityAsked = true
  }

  noteSample(record: ConnRecord, sample: KernelSample | null): void {
    ;(record as Mutable<ConnRecord>).kernel = sample
  }

  noteGone(record: ConnRecord, why: string): void {
    ;(record as Mutable<ConnRecord>).goneReason = why
  }

  noteVerdict(record: ConnRecord, verdict: VerdictRecord): void {
    ;(record as Mutable<ConnRecord>).verdict = verdict
  }

  noteAcquiredStack(record: ConnRecord, stack: string | null): void {
    ;(record as Mutable<ConnRecord>).acquiredStack = stack
  }

  noteLeakReported(record: ConnRecord): void {
    ;(record as Mutable<ConnRecord>).leakReported = true
  }

  /** Stops every deadline timer (the pool ended). */
  stop(): void {
    for (const t of this.timers.values()) clearTimeout(t)
    this.timers.clear()
  }

  private arm(rec: Mutable<ConnRecord>, now: number): void {
    const ms = this.connectDeadlineMs()
    if (ms <= 0) return
    const t = setTimeout(() => {
      this.timers.delete(rec.id)
      if (rec.state === 'connecting') this.hooks.connectDeadline(rec, Date.now(), ms)
    }, ms)
    t.unref()
    this.timers.set(rec.id, t)
  }

  private disarm(rec: ConnRecord): void {
    const t = this.timers.get(rec.id)
    if (t) clearTimeout(t)
    this.timers.delete(rec.id)
  }
}

export function toSnapshot(rec: ConnRecord, timeline: number | null): ConnSnapshot {
  const {
    client: _c, socket: _s, acquiredStack: _a, leakReported: _l, kernel: k, goneReason: _g, attempt: _p, serverAt: _sa, identityAsked: _ia,
    reportedRole: role, reportedRoleAt: _ra, txStatus: _t, xid: _x, ...rest
  } = rec
  return {
    ...rest,
    role: role ? (role.inHotStandby ? 'standby' : 'primary') : null,
    readOnly: role ? role.readOnly : null,
    timeline,
    server: rec.server && { ...rec.server, role: { ...rec.server.role } },
    socketOptions: rec.socketOptions && { ...rec.socketOptions, errors: [...rec.socketOptions.errors] },
    verdict: rec.verdict && { ...rec.verdict },
    kernel: k && {
      ...k,
      stateName: tcpStateName(k.state),
      bytesReceived: k.bytesReceived === null ? null : Number(k.bytesReceived),
      bytesAcked: k.bytesAcked === null ? null : Number(k.bytesAcked),
    },
  }
}
