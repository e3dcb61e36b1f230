/**
 * Keepalive and TCP_USER_TIMEOUT on a pooled socket. Node's `socket.setKeepAlive(true, ms)` sets only the
 * idle time (libuv then forces a 1 s interval and 10 probes), and with pg's default delay of 0 the idle
 * set fails silently so the OS default of 7200 s + 9 x 75 s applies. We set all four values ourselves
 * through setsockopt (koffi). Without the FFI we fall back to Node: newer lines (24.x, 26) take
 * `setKeepAlive(true, idle, interval, count)` and so set three of the four; older ones set only the idle
 * time. TCP_USER_TIMEOUT always needs the FFI. The report says what was applied, never what was asked.
 */
import * as net from 'node:net'
import type { Socket } from 'node:net'
import { WarningCodes, warnOnce } from '../errors'
import { IPPROTO_TCP, SO_KEEPALIVE, SOL_SOCKET, TCP_KEEPCNT, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_USER_TIMEOUT } from '../kernel/ffi'
import { defaultKernel, type KernelPort } from '../kernel/port'

export interface KeepaliveSettings {
  keepAliveIdleMs: number
  keepAliveIntervalMs: number
  keepAliveCount: number
  /** 0 leaves TCP_USER_TIMEOUT unset. */
  userTimeoutMs: number
}

/** What a socket ended up with. `null` means "could not be set or read here". */
export interface SocketOptionsReport {
  /**
   * 'ffi': all four set through setsockopt and read back with getsockopt. 'node': through
   * socket.setKeepAlive, never TCP_USER_TIMEOUT; on Node with the 4-argument form (24.x, 26) idle, interval
   * and count are ours, on older lines only the idle time (libuv applies its 1 s x 10, reported as such).
   */
  via: 'ffi' | 'node'
  keepAlive: boolean
  keepAliveIdleMs: number | null
  keepAliveIntervalMs: number | null
  keepAliveCount: number | null
  userTimeoutMs: number | null
  /** setsockopt failures, e.g. "TCP_USER_TIMEOUT: errno 22". */
  errors: string[]
}

export function hardenSocket(socket: Socket, fd: number | undefined, s: KeepaliveSettings, kernel: KernelPort = defaultKernel()): SocketOptionsReport {
  const load = kernel.sockopt()
  if (!load.ok || fd === undefined || fd < 0) {
    return hardenThroughNode(socket, s, load.ok ? 'the socket exposes no file descriptor' : load.reason)
  }
  const { sockopt } = load
  const errors: string[] = []
  const set = (level: number, name: number, label: string, value: number): void => {
    const errno = sockopt.setInt(fd, level, name, value)
    if (errno !== 0) errors.push(`${label}=${value}: errno ${errno}`)
  }
  set(SOL_SOCKET, SO_KEEPALIVE, 'SO_KEEPALIVE', 1)
  set(IPPROTO_TCP, TCP_KEEPIDLE, 'TCP_KEEPIDLE', s.keepAliveIdleMs / 1000)
  set(IPPROTO_TCP, TCP_KEEPINTVL, 'TCP_KEEPINTVL', s.keepAliveIntervalMs / 1000)
  set(IPPROTO_TCP, TCP_KEEPCNT, 'TCP_KEEPCNT', s.keepAliveCount)
  if (s.userTimeoutMs > 0) set(IPPROTO_TCP, TCP_USER_TIMEOUT, 'TCP_USER_TIMEOUT', s.userTimeoutMs)
  if (errors.length > 0) {
    warnOnce(WarningCodes.SOCKET_OPTION_FAILED, `setsockopt failed on fd ${fd}: ${errors.join(', ')}`, errors.join())
  }
  const back = readSocketOptions(fd, kernel)
  return { via: 'ffi', ...(back ?? unknownOptions()), errors }
}

/**
 * True when this Node's socket.setKeepAlive takes (enable, initialDelay, interval, count), added by
 * nodejs/node#63825 (2026; checked present in 24.22 and 26.12, absent in 20.20). Detected by the method's
 * arity rather than the version number, so a backport is picked up and an earlier 24.x is not mistaken.
 */
export const nodeSetsKeepAliveIntervalAndCount: boolean = net.Socket.prototype.setKeepAlive.length >= 4

/** libuv's fixed keepalive interval and count on Linux when Node sets only the idle time (deps/uv/src/unix/tcp.c). */
export const LIBUV_KEEPALIVE_INTERVAL_MS = 1_000
export const LIBUV_KEEPALIVE_COUNT = 10

/** The no-FFI path: what socket.setKeepAlive can do on this Node, warned once, reported as applied. */
function hardenThroughNode(socket: Socket, s: KeepaliveSettings, why: string, full = nodeSetsKeepAliveIntervalAndCount): SocketOptionsReport {
  const noUserTimeout = s.userTimeoutMs > 0 ? `TCP_USER_TIMEOUT is not set (${s.userTimeoutMs} ms asked; it needs the FFI)` : ''
  const what = full
    ? `pooled sockets get keepalive idle ${s.keepAliveIdleMs} ms, interval ${s.keepAliveIntervalMs} ms and count ` +
      `${s.keepAliveCount} through Node's setKeepAlive`
    : `pooled sockets get keepalive idle ${s.keepAliveIdleMs} ms through Node only (this Node's setKeepAlive ` +
      `takes no interval or count, so they stay at libuv's 1 s x 10; newer Node (24, 26) sets them)`
  warnOnce(WarningCodes.FFI_UNAVAILABLE, `${why}; ${what}${noUserTimeout ? `; ${noUserTimeout}` : ''}`, why)
  const libuv = process.platform === 'linux' // where libuv's 1 s x 10 is checked (test/pg/socket-options.test.ts)
  if (full) {
    // Node 24+ reads the 4-argument form; the cast only keeps @types/node 20 quiet.
    ;(socket.setKeepAlive as (enable: boolean, idleMs: number, intervalMs: number, count: number) => Socket)
      .call(socket, true, s.keepAliveIdleMs, s.keepAliveIntervalMs, s.keepAliveCount)
  } else {
    socket.setKeepAlive(true, s.keepAliveIdleMs)
  }
  return {
    via: 'node',
    keepAlive: true,
    keepAliveIdleMs: s.keepAliveIdleMs,
    keepAliveIntervalMs: full ? s.keepAliveIntervalMs : libuv ? LIBUV_KEEPALIVE_INTERVAL_MS : null,
    keepAliveCount: full ? s.keepAliveCount : libuv ? LIBUV_KEEPALIVE_COUNT : null,
    userTimeoutMs: null,
    errors: [],
  }
}

function unknownOptions(): Omit<SocketOptionsReport, 'via' | 'errors'> {
  return { keepAlive: false, keepAliveIdleMs: null, keepAliveIntervalMs: null, keepAliveCount: null, userTimeoutMs: null }
}

/** Reads the options back from the kernel with getsockopt; null when the FFI is not available. */
export function readSocketOptions(fd: number, kernel: KernelPort = defaultKernel()): Omit<SocketOptionsReport, 'via' | 'errors'> | null {
  const load = kernel.sockopt()
  if (!load.ok) return null
  const { sockopt } = load
  try {
    return {
      keepAlive: sockopt.getInt(fd, SOL_SOCKET, SO_KEEPALIVE) !== 0,
      keepAliveIdleMs: sockopt.getInt(fd, IPPROTO_TCP, TCP_KEEPIDLE) * 1000,
      keepAliveIntervalMs: sockopt.getInt(fd, IPPROTO_TCP, TCP_KEEPINTVL) * 1000,
      keepAliveCount: sockopt.getInt(fd, IPPROTO_TCP, TCP_KEEPCNT),
      userTimeoutMs: sockopt.getInt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT),
    }
  } catch {
    return null
  }
}
