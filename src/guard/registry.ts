/**
 * One record per client, from the moment pg-pool builds it until it is gone. Private to the guard: the
 * public view is `snapshot()` (plain data). Every field changes through a method of this class, and the
 * state only through `transition()`, which also starts and stops the state's timers and tells the
 * guard's metrics (postgres.js's one state per connection is the model).
 *
 *   connecting --(pool 'connect')--> idle <--(acquire/release)--> in-use
 *        \                             \                           /
 *         `------------(verdict)--------> evicting ---(closed)---> ended
 *
 * connecting covers the TCP handshake, TLS, the startup packet and authentication (a deadline timer runs
 * there); ended records leave the registry.
 */
import type { Socket } from 'node:net'
import type { Client } from 'pg'
import type { KernelSample } from '../kernel/sample'
import { tcpStateName } from '../kernel/tcp-info'
import type { VerdictKind } from '../judge/verdicts'
import type { SocketOptionsReport } from '../socket/harden'
import type { Attempt, ServerRole } from '../topology/hosts'
import type { ServerIdentity, SessionIdentity } from '../topology/identity'

export interface VerdictRecord {
  kind: VerdictKind
  evidence: string
  at: number
  firstEvidenceAt: number
}

export type ConnState = 'connecting' | 'idle' | 'in-use' | 'evicting' | 'ended'

export interface ConnRecord {
  /** Sequential per guard, stable for the life of the client. */
  readonly id: number
  readonly client: Client
  readonly socket: Socket | undefined
  readonly state: ConnState
  readonly configuredHost: string
  readonly configuredPort: number
  /** 'tcp', or 'unix' for a Unix-domain socket (no TCP_INFO: no kernel verdicts), null until connected. */
  readonly transport: 'tcp' | 'unix' | null
  readonly remoteAddress: string | null
  readonly remotePort: number | null
  readonly localAddress: string | null
  readonly localPort: number | null
  readonly family: 'IPv4' | 'IPv6' | null
  readonly fd: number | null
  /** Socket inode, from /proc/self/fd/<fd> -> socket:[inode]; the key into /proc/net/tcp. */
  readonly inode: number | null
  readonly backendPid: number | null
  /** 'primary' or 'standby', as the session reported it (in_hot_standby), or null until known. */
  readonly role: 'primary' | 'standby' | null
  /** default_transaction_read_only of the session. */
  readonly readOnly: boolean | null
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
  /** The full role report and when it arrived (for topology decisions). */
  readonly serverRole: ServerRole | null
  readonly serverRoleAt: number | null
  /** The connection attempt this client was made for (host, port, required role). */
  readonly attempt: Attempt | null
  /**
   * The server this session reached, read once after login (topology/identity.ts), and when: behind a VIP
   * or a load balancer, which server the address led to. Null where it was not read.
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
export type ConnSnapshot = Omit<ConnRecord, 'client' | 'socket' | 'acquiredStack' | 'leakReported' | 'kernel' | 'goneReason' | 'serverRole' | 'serverRoleAt' | 'attempt' | 'serverAt' | 'identityAsked'> & {
  /** The host's timeline, as the topology last read it. */
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
  /** After every state change (metrics, follow-up work). */
  transitioned(rec: ConnRecord, from: ConnState, now: number): void
  /** A connecting record's deadline passed (armed on entering 'connecting', cleared on leaving it). */
  connectDeadline(rec: ConnRecord, now: number): void
}

export class Registry {
  private readonly byClient = new Map<Client, Mutable<ConnRecord>>()
  private readonly timers = new Map<number, NodeJS.Timeout>()
  private nextId = 1
  /** Bumped when something the topology rules read changes (a socket joined, a role report). */
  version = 0

  constructor(
    private readonly hooks: RegistryHooks,
    /** How long a connection may stay 'connecting'; 0: no deadline. */
    private readonly connectDeadlineMs: () => number
  ) {}

  add(client: Client, configuredHost: string, configuredPort: number, attempt: Attempt | null, now: number): ConnRecord {
    const rec: Mutable<ConnRecord> = {
      id: this.nextId++, client, socket: undefined, state: 'connecting', configuredHost, configuredPort, transport: null,
      remoteAddress: null, remotePort: null, localAddress: null, localPort: null, family: null, fd: null, inode: null,
      backendPid: null, role: null, readOnly: null, region: null, socketOptions: null, serverRole: null, serverRoleAt: null,
      attempt, kernel: null, verdict: null, goneReason: null, createdAt: now, lastAcquiredAt: null, lastReleasedAt: null,
      uses: 0, acquiredStack: null, leakReported: false, server: null, serverAt: null, pooler: null, identityAsked: false,
    }
    this.byClient.set(client, rec)
    this.arm(rec, now)
    return rec
  }

  get(client: Client): ConnRecord | undefined {
    return this.byClient.get(client)
  }

  records(): ConnRecord[] {
    return [...this.byClient.values()]
  }

  /** The one place a record's state changes; 'ended' removes it. */
  transition(record: ConnRecord, to: ConnState, now: number): void {
    const rec = this.own(record)
    const from = rec.state
    if (from === to || from === 'ended') return
    if (from === 'evicting' && to !== 'ended') return // an evicted client only ever leaves
    rec.state = to
    if (from === 'connecting') this.disarm(rec)
    if (to === 'in-use') {
      rec.lastAcquiredAt = now
      rec.uses++
      rec.leakReported = false
    } else if (to === 'idle' && from === 'in-use') {
      rec.lastReleasedAt = now
      rec.acquiredStack = null
    } else if (to === 'ended') {
      this.byClient.delete(rec.client)
    }
    if (from === 'connecting' && (to === 'idle' || to === 'in-use')) this.version++ // a new socket to judge
    this.hooks.transitioned(rec, from, now)
  }

  /** The stream pg will connect, before it is connected: its TCP handshake is watched too. */
  attachStream(record: ConnRecord, stream: Socket, transport: 'tcp' | 'unix'): void {
    const rec = this.own(record)
    rec.socket = stream
    rec.transport = transport
  }

  attachSocket(record: ConnRecord, id: SocketIdentity): void {
    const rec = this.own(record)
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
    this.own(record).backendPid = pid
  }

  noteRole(record: ConnRecord, role: ServerRole, at: number): void {
    const rec = this.own(record)
    rec.serverRole = role
    rec.serverRoleAt = at
    rec.role = role.inHotStandby ? 'standby' : 'primary'
    rec.readOnly = role.readOnly
    this.version++
  }

  /** What the session's identity query said after login (null: not read), and whether a pooler answers in front. */
  noteIdentity(record: ConnRecord, identity: SessionIdentity | null, pooler: boolean, at: number): void {
    const rec = this.own(record)
    rec.server = identity?.server ?? null
    rec.serverAt = identity ? at : null
    rec.pooler = pooler
    this.version++
  }

  noteIdentityAsked(record: ConnRecord): void {
    this.own(record).identityAsked = true
  }

  noteSample(record: ConnRecord, sample: KernelSample | null): void {
    this.own(record).kernel = sample
  }

  noteGone(record: ConnRecord, why: string): void {
    this.own(record).goneReason = why
  }

  /** For sockets matched by 4-tuple: the inode could not be read (no /proc/self/fd). */
  forgetInode(record: ConnRecord): void {
    this.own(record).inode = null
  }

  noteVerdict(record: ConnRecord, verdict: VerdictRecord): void {
    this.own(record).verdict = verdict
  }

  noteAcquiredStack(record: ConnRecord, stack: string | null): void {
    this.own(record).acquiredStack = stack
  }

  noteLeakReported(record: ConnRecord): void {
    this.own(record).leakReported = true
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
      if (rec.state === 'connecting') this.hooks.connectDeadline(rec, now + ms)
    }, ms)
    t.unref()
    this.timers.set(rec.id, t)
  }

  private disarm(rec: ConnRecord): void {
    const t = this.timers.get(rec.id)
    if (t) clearTimeout(t)
    this.timers.delete(rec.id)
  }

  private own(rec: ConnRecord): Mutable<ConnRecord> {
    return rec as Mutable<ConnRecord>
  }
}

export function toSnapshot(rec: ConnRecord, timeline: number | null): ConnSnapshot {
  const { client: _c, socket: _s, acquiredStack: _a, leakReported: _l, kernel: k, goneReason: _g, serverRole: _r, serverRoleAt: _t, attempt: _p, serverAt: _sa, identityAsked: _ia, ...rest } = rec
  return {
    ...rest,
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
