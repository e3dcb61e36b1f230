/**
 * The process-wide view: sockets this process holds to a database port that no guarded pool knows (a
 * second, unguarded pool, a leaked client). Each guard registers what it knows — its socket inodes and
 * the ports it talks to — and nothing else of itself.
 */
import type { TcpRow } from '../kernel/proc-net-tcp'
import { TcpState } from '../kernel/tcp-info'

/** A socket this process holds to a database port that no guarded pool knows: a second pool, a leaked client. */
export type ForeignSocket = Pick<TcpRow, 'localAddress' | 'localPort' | 'remoteAddress' | 'remotePort' | 'state' | 'txQueue' | 'retransmits' | 'probes' | 'inode'>

export interface KnownSockets {
  inodes(): Iterable<number>
  ports(): Iterable<number>
}

const members = new Set<KnownSockets>()

export function joinProcessView(m: KnownSockets): () => void {
  members.add(m)
  return () => members.delete(m)
}

/** From a /proc table and this process's inodes: the sockets to database ports no guard knows. */
export function foreignSockets(rows: TcpRow[], mine: ReadonlySet<number>): ForeignSocket[] {
  const known = new Set<number>()
  const ports = new Set<number>([5432])
  for (const m of members) {
    for (const i of m.inodes()) known.add(i)
    for (const p of m.ports()) ports.add(p)
  }
  return rows
    .filter((r) => mine.has(r.inode) && !known.has(r.inode) && ports.has(r.remotePort) && r.state !== TcpState.LISTEN)
    .map((r) => ({
      localAddress: r.localAddress, localPort: r.localPort, remoteAddress: r.remoteAddress, remotePort: r.remotePort,
      state: r.state, txQueue: r.txQueue, retransmits: r.retransmits, probes: r.probes, inode: r.inode,
    }))
}
