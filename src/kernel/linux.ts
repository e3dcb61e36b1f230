/** The Linux kernel port: TCP_INFO and setsockopt through koffi (./ffi.ts), tables and fds from /proc. */
import { loadSockopt } from './ffi'
import type { KernelPort } from './port'
import { fdInode, readTcpTable, socketInodesOf } from './reader'
import { glanceTcpInfo, sampleTcpInfo } from './sample'

export const linuxKernel: KernelPort = {
  samplingUnavailable() {
    const load = loadSockopt()
    return load.ok ? null : load.reason
  },
  sample: sampleTcpInfo,
  glance: glanceTcpInfo,
  table: (filter) => readTcpTable(undefined, undefined, filter),
  inodeOf: (fd) => fdInode('self', fd),
  inodesOf: socketInodesOf,
  sockopt: loadSockopt,
}
