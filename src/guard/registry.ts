/**
 * One record per pooled client. A record changes state only through `setState` (one state per
 * connection, changed in one place); a closed record leaves the registry there.
 */
import { readlinkSync } from 'node:fs'
import type { Socket } from 'node:net'
import type { Client } from 'pg'
import type { SocketOptionsReport } from '../socket/harden'
import { tcpStateName } from '../socket/tcp-info'
import type { Attempt, ServerRole } from '../topology/hosts'
import type { TopologyVerdictKind } from '../topology/topology'
import type { VerdictKind } from './classifier'
import type { KernelSample } from './sample'

/** Every reason the guard evicts a connection for: kernel and probe verdicts, and topology verdicts. */
export type EvictionReason = VerdictKind | TopologyVerdictKind

export interface VerdictRecord {
  kind: EvictionReason
  evidence: string
  at: number
  firstEvidenceAt: number
}

export type ConnState = 'connecting' | 'idle' | 'in-use' | 'evicting' | 'closed'

export interface ConnRecord {
  /** Sequential per guard, stable for the life of the client. */
  readonly id: number
  readonly client: Client
  socket: Socket | undefined
  state: ConnState
  configuredHost: string
  configuredPort: number
  remoteAddress: string | null
  remotePort: number | null
  localAddress: string | null
  localPort: number | null
  family: 'IPv4' | 'IPv6' | null
  fd: number | null
  /** Socket inode, from /proc/self/fd/<fd> -> socket:[inode]; the key into /proc/net/tcp. */
  inode: number | null
  backendPid: number | null
  /** 'primary' or 'standby', as the session reported it (in_hot_standby), or null until known. */
  role: 'primary' | 'standby' | null
  /** default_transaction_read_only of the session. */
  readOnly: boolean | null
  /** The host's timeline, as the topology last read it. */
  timeline: number | null
  /** From guard.regions, or null. */
  region: string | null
  socketOptions: SocketOptionsReport | null
  createdAt: number
  lastAcquiredAt: number | null
  lastReleasedAt: number | null
  uses: number
  /** The latest kernel sample (TCP_INFO or /proc row). */
  kernel: KernelSample | null
  /** Why the guard evicted it, with the evidence. */
  verdict: VerdictRecord | null
  /** Set by the /proc cross-check when the fd no longer leads to this socket. */
  goneReason: string | null
  /** The full role report and when it arrived (for topology decisions). */
  serverRole: ServerRole | null
  serverRoleAt: number | null
  /** The connection attempt this client was made for (host, port, required role). */
  attempt: Attempt | null
  /** Stack of the code that acquired it, kept only when leak detection is on. */
  acquiredStack: string | null
  leakReported: boolean
}

/** The kernel sample as plain JSON-safe data. */
export interface KernelSnapshot extends Omit<KernelSample, 'bytesReceived' | 'bytesAcked'> {
  stateName: string
  bytesReceived: number | null
  bytesAcked: number | null
}

/** A record as `snapshot()` returns it: plain data (JSON-safe), no client or socket object, no secrets. */
export type ConnSnapshot = Omit<ConnRecord, 'client' | 'socket' | 'acquiredStack' | 'leakReported' | 'kernel' | 'goneReason' | 'serverRole' | 'serverRoleAt' | 'attempt'> & {
  kernel: KernelSnapshot | null
}

export class Registry {
  private readonly byClient = new Map<Client, ConnRecord>()
  private nextId = 1

  add(client: Client, configuredHost: string, configuredPort: number, now: number): ConnRecord {
    const rec: ConnRecord = {
      id: this.nextId++,
      client,
      socket: undefined,
      state: 'connecting',
      configuredHost,
      configuredPort,
      remoteAddress: null,
      remotePort: null,
      localAddress: null,
      localPort: null,
      family: null,
      fd: null,
      inode: null,
      backendPid: null,
      role: null,
      readOnly: null,
      timeline: null,
      region: null,
      socketOptions: null,
      serverRole: null,
      serverRoleAt: null,
      attempt: null,
      kernel: null,
      verdict: null,
      goneReason: null,
      createdAt: now,
      lastAcquiredAt: null,
      lastReleasedAt: null,
      uses: 0,
      acquiredStack: null,
      leakReported: false,
    }
    this.byClient.set(client, rec)
    return rec
  }

  get(client: Client): ConnRecord | undefined {
    return this.byClient.get(client)
  }

  setState(rec: ConnRecord, state: ConnState): void {
    if (rec.state === state || rec.state === 'closed') return
    rec.state = state
    if (state === 'closed') this.byClient.delete(rec.client)
  }

  records(): ConnRecord[] {
    return [...this.byClient.values()]
  }

  snapshot(filter: (rec: ConnRecord) => boolean = () => true): ConnSnapshot[] {
    return this.records().filter(filter).map(toSnapshot)
  }
}

export function toSnapshot(rec: ConnRecord): ConnSnapshot {
  const { client: _c, socket: _s, acquiredStack: _a, leakReported: _l, kernel: k, goneReason: _g, serverRole: _r, serverRoleAt: _t, attempt: _p, ...rest } = rec
  return {
    ...rest,
    socketOptions: rec.socketOptions && { ...rec.socketOptions },
    verdict: rec.verdict && { ...rec.verdict },
    kernel: k && {
      ...k,
      stateName: tcpStateName(k.state),
      bytesReceived: k.bytesReceived === null ? null : Number(k.bytesReceived),
      bytesAcked: k.bytesAcked === null ? null : Number(k.bytesAcked),
    },
  }
}

/** Fill the socket identity fields once the TCP connection is up. */
export function recordSocket(rec: ConnRecord, socket: Socket, fd: number | undefined): void {
  rec.socket = socket
  rec.remoteAddress = socket.remoteAddress ?? null
  rec.remotePort = socket.remotePort ?? null
  rec.localAddress = socket.localAddress ?? null
  rec.localPort = socket.localPort ?? null
  rec.family = (socket.remoteFamily as 'IPv4' | 'IPv6' | undefined) ?? null
  rec.fd = fd ?? null
  rec.inode = fd === undefined ? null : socketInode(fd)
}

/** /proc/self/fd/N links to "socket:[inode]" on Linux; null elsewhere or if the fd is gone. */
export function socketInode(fd: number): number | null {
  try {
    const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`))
    return m ? Number(m[1]) : null
  } catch {
    return null
  }
}
