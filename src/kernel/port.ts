/**
 * The one door to the kernel. Everything the guard asks Linux — TCP_INFO of a socket, the /proc/net/tcp
 * tables, which inode an fd is, which sockets a process holds, setsockopt/getsockopt — goes through a
 * KernelPort. The Linux implementation is `linuxKernel` (./linux.ts); tests pass a FakeKernel
 * (./fake.ts), so cadence, the /proc budget and the eviction policy are tested without a kernel.
 */
import type { SockoptLoad } from './ffi'
import type { RowFilter } from './proc-net-tcp'
import type { TcpTable } from './reader'
import type { KernelSample, SocketGlance } from './sample'

export interface KernelPort {
  /** Why per-socket sampling (TCP_INFO) cannot work here (no FFI, not Linux), or null when it can. */
  samplingUnavailable(): string | null
  /** TCP_INFO of one socket fd, normalized; undefined when it cannot be read (closed fd, not a TCP socket). */
  sample(fd: number): KernelSample | undefined
  /** The same TCP_INFO read, only the fields the checkout check needs (a third of the cost); undefined as for sample(). */
  glance(fd: number): SocketGlance | undefined
  /** /proc/self/net/tcp{,6}, keeping only rows whose inode passes `filter` (rows are built only for those). */
  table(filter?: RowFilter): TcpTable
  /** The socket inode behind an fd of this process, or null. */
  inodeOf(fd: number): number | null
  /** Socket inodes a process holds open. */
  inodesOf(pid: number | 'self'): Set<number>
  /** setsockopt/getsockopt on fds, or why they cannot be called. */
  sockopt(): SockoptLoad
}

let current: KernelPort | undefined

/** The kernel port guards use when none is given: Linux, unless a test swapped it. */
export function defaultKernel(): KernelPort {
  // Loaded lazily so that merely importing the port does not touch koffi.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  current ??= (require('./linux') as typeof import('./linux')).linuxKernel
  return current
}

/** For tests: the port new guards get (undefined restores Linux). */
export function _setKernelForTests(port: KernelPort | undefined): void {
  current = port
}
