/**
 * Keepalive and TCP_USER_TIMEOUT on a pooled socket. Node's `socket.setKeepAlive(true, ms)` sets only the
 * idle time (libuv then forces a 1 s interval and 10 probes), and with pg's default delay of 0 the idle
 * set fails silently so the OS default of 7200 s + 9 x 75 s applies. We set all four values ourselves.
 */
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
  /** 'ffi': all four set through setsockopt; 'node': only what socket.setKeepAlive can do. */
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
    const why = load.ok ? 'the socket exposes no file descriptor' : load.reason
    warnOnce(
      WarningCodes.FFI_UNAVAILABLE,
      `${why}; pooled sockets get keepalive idle ${s.keepAliveIdleMs} ms through Node only ` +
        '(interval and count stay at libuv\'s 1 s x 10, TCP_USER_TIMEOUT is not set)',
      why
    )
    socket.setKeepAlive(true, s.keepAliveIdleMs)
    return {
      via: 'node',
      keepAlive: true,
      keepAliveIdleMs: s.keepAliveIdleMs,
      keepAliveIntervalMs: null,
      keepAliveCount: null,
      userTimeoutMs: null,
      errors: [],
    }
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
