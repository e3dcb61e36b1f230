/**
 * A kernel port for unit tests: samples, table rows and inodes are whatever the test sets, and every
 * /proc read is counted and costs what the test says, so cadence and budget can be asserted exactly.
 */
import type { SockoptLoad } from './ffi'
import type { RowFilter, TcpRow } from './proc-net-tcp'
import type { KernelPort } from './port'
import type { TcpTable } from './reader'
import type { KernelSample } from './sample'

export class FakeKernel implements KernelPort {
  /** TCP_INFO per fd; an fd missing here samples as undefined (closed, or not TCP). */
  readonly samples = new Map<number, KernelSample>()
  /** fd -> inode of this process. */
  readonly inodes = new Map<number, number>()
  rows: TcpRow[] = []
  /** What a table read reports as its own duration (the budget's input). */
  tableCostMs = 0
  tableReads = 0
  sampleCalls = 0
  /** Non-null: sampling is unavailable, for this reason (the /proc fallback). */
  unavailable: string | null = null

  samplingUnavailable(): string | null {
    return this.unavailable
  }

  glance(fd: number): KernelSample | undefined {
    return this.sample(fd)
  }

  sample(fd: number): KernelSample | undefined {
    this.sampleCalls++
    return this.unavailable ? undefined : this.samples.get(fd)
  }

  table(filter?: RowFilter): TcpTable {
    this.tableReads++
    const rows = filter ? this.rows.filter((r) => filter(r.inode, r.remotePort)) : this.rows.slice()
    return { rows, skipped: 0, errors: [], durationMs: this.tableCostMs }
  }

  inodeOf(fd: number): number | null {
    return this.inodes.get(fd) ?? null
  }

  inodesOf(): Set<number> {
    return new Set(this.inodes.values())
  }

  sockopt(): SockoptLoad {
    return { ok: false, reason: 'fake kernel: no setsockopt' }
  }
}
