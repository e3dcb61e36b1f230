/**
 * Reads the kernel's TCP tables and this process's socket inodes. The file reader is injected so the
 * classifier's callers can be tested without a kernel; the default reads /proc.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { parseProcNetTcp, type RowFilter, type TcpRow } from './proc-net-tcp'

export interface TcpTable {
  rows: TcpRow[]
  /** Unparseable lines, summed over tcp and tcp6. */
  skipped: number
  /** Why a table could not be read (e.g. not Linux), per file. */
  errors: string[]
  /** How long the read and parse took, ms. */
  durationMs: number
}

export type ReadFile = (path: string) => string

const defaultRead: ReadFile = (path) => readFileSync(path, 'utf8')

/** /proc/self/net/tcp{,6}: the sockets of this process's network namespace. */
export function readTcpTable(read: ReadFile = defaultRead, procNet = '/proc/self/net', filter?: RowFilter): TcpTable {
  const started = performance.now()
  const rows: TcpRow[] = []
  const errors: string[] = []
  let skipped = 0
  for (const [file, family] of [['tcp', 4], ['tcp6', 6]] as const) {
    let text: string
    try {
      text = read(`${procNet}/${file}`)
    } catch (err) {
      errors.push(`${procNet}/${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
      continue
    }
    const parsed = parseProcNetTcp(text, family, filter)
    for (const r of parsed.rows) rows.push(r)
    skipped += parsed.skipped
  }
  return { rows, skipped, errors, durationMs: performance.now() - started }
}

/** Socket inodes held open by a process (`self` or a pid), from /proc/<pid>/fd/* -> socket:[inode]. */
export function socketInodesOf(pid: number | 'self' = 'self'): Set<number> {
  const out = new Set<number>()
  let fds: string[]
  try {
    fds = readdirSync(`/proc/${pid}/fd`)
  } catch {
    return out
  }
  for (const fd of fds) {
    const inode = fdInode(pid, fd)
    if (inode !== null) out.add(inode)
  }
  return out
}

/** /proc/<pid>/fd/N links to "socket:[inode]" on Linux; null elsewhere, for other files, or if the fd is gone. */
export function fdInode(pid: number | 'self', fd: number | string): number | null {
  try {
    const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))
    return m ? Number(m[1]) : null
  } catch {
    return null
  }
}
