/**
 * setsockopt/getsockopt on a socket's file descriptor through koffi, the one native piece of this library.
 * Node exposes neither TCP_KEEPINTVL, TCP_KEEPCNT, TCP_USER_TIMEOUT nor TCP_INFO; libc does.
 *
 * koffi is an optional dependency. When it is missing, or the platform is not Linux, `loadSockopt()`
 * returns the reason instead and callers fall back to what Node can do on its own.
 */

/** Linux values (include/uapi/linux/tcp.h, asm-generic/socket.h). Other platforms use other numbers. */
export const SOL_SOCKET = 1
export const SO_KEEPALIVE = 9
export const SO_LINGER = 13
export const IPPROTO_TCP = 6
export const TCP_KEEPIDLE = 4
export const TCP_KEEPINTVL = 5
export const TCP_KEEPCNT = 6
export const TCP_INFO = 11
export const TCP_USER_TIMEOUT = 18

/** Bytes of struct tcp_info we ask for; the kernel fills min(this, its own size). 232 covers Linux 5.x-6.x fields we read. */
export const TCP_INFO_SIZE = 232

export interface Sockopt {
  /** Returns 0 or an errno. */
  setInt(fd: number, level: number, name: number, value: number): number
  /** Returns the value, or throws with the errno. */
  getInt(fd: number, level: number, name: number): number
  /** Fills `buf` with struct tcp_info; returns the number of bytes the kernel wrote, or -errno. */
  tcpInfo(fd: number, buf: Buffer): number
  /**
   * SO_LINGER on with a zero timeout: the close that follows sends an RST and drops unsent and
   * unacknowledged data, instead of the kernel retransmitting it from an orphaned socket after the peer
   * is reachable again. Returns 0 or an errno.
   */
  resetOnClose(fd: number): number
}

export type SockoptLoad = { ok: true; sockopt: Sockopt } | { ok: false; reason: string }

/** The slice of koffi's API used here (koffi is optional, so its types may be absent at build time). */
interface Koffi {
  load(path: string): { func(signature: string): (...args: unknown[]) => number }
  errno(): number
}

let cached: SockoptLoad | undefined

export function loadSockopt(): SockoptLoad {
  if (cached) return cached
  cached = tryLoad()
  return cached
}

function tryLoad(): SockoptLoad {
  if (process.platform !== 'linux') {
    return { ok: false, reason: `socket options beyond keepalive idle need Linux, this is ${process.platform}` }
  }
  let koffi: Koffi
  try {
    koffi = require('koffi')
  } catch (err) {
    return { ok: false, reason: `the optional dependency koffi did not load (${(err as Error).message.split('\n')[0]})` }
  }
  try {
    const libc = koffi.load('libc.so.6')
    const setsockopt = libc.func('int setsockopt(int, int, int, const void *, uint32_t)')
    const getsockopt = libc.func('int getsockopt(int, int, int, _Out_ void *, _Inout_ uint32_t *)')
    const intBuf = Buffer.alloc(4)
    const lingerBuf = Buffer.alloc(8)
    const lenBox = [0]
    const sockopt: Sockopt = {
      setInt(fd, level, name, value) {
        intBuf.writeInt32LE(value)
        return setsockopt(fd, level, name, intBuf, 4) === 0 ? 0 : koffi.errno()
      },
      getInt(fd, level, name) {
        lenBox[0] = 4
        if (getsockopt(fd, level, name, intBuf, lenBox) !== 0) {
          throw new Error(`getsockopt(${fd}, ${level}, ${name}) failed with errno ${koffi.errno()}`)
        }
        return intBuf.readInt32LE()
      },
      resetOnClose(fd) {
        // struct linger { int l_onoff; int l_linger; }
        lingerBuf.writeInt32LE(1, 0)
        lingerBuf.writeInt32LE(0, 4)
        return setsockopt(fd, SOL_SOCKET, SO_LINGER, lingerBuf, 8) === 0 ? 0 : koffi.errno()
      },
      tcpInfo(fd, buf) {
        lenBox[0] = buf.length
        return getsockopt(fd, IPPROTO_TCP, TCP_INFO, buf, lenBox) === 0 ? lenBox[0] : -koffi.errno()
      },
    }
    return { ok: true, sockopt }
  } catch (err) {
    return { ok: false, reason: `koffi loaded but libc setsockopt/getsockopt did not bind (${(err as Error).message})` }
  }
}

/** For tests: forget the cached result so a fallback can be exercised. */
export function _resetSockoptForTests(override?: SockoptLoad): void {
  cached = override
}
