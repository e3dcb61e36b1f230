/**
 * pg-pool-guard scan: this host's connections to PostgreSQL, from the kernel's socket table, with the
 * verdicts the guard itself would reach (the same classifier, fed /proc rows), the process owning each
 * socket, its region, and the processes that hold sockets to more than one region.
 *
 * The table is read twice, a second apart (or continuously with --watch): a stall is a change over time.
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs'
import { classify, type SocketInput, type SocketMemory, type Verdict } from '../guard/classifier'
import { sampleFromRow } from '../guard/sample'
import { normalizeAddress, type TcpRow } from '../kernel/proc-net-tcp'
import { readTcpTable } from '../kernel/reader'
import { GUARD_DEFAULTS } from '../options'
import { tcpStateName } from '../socket/tcp-info'
import { Regions } from '../topology/regions'

const TIMERS = ['-', 'retransmit', 'keepalive', 'time-wait', 'zero-window']

export interface ScanRow {
  pid: number | null
  command: string | null
  local: string
  remote: string
  state: string
  txQueue: number
  rxQueue: number
  timer: string
  retransmits: number
  probes: number
  inode: number
  region: string | null
  verdict: string | null
  evidence: string | null
}

export interface ScanResult {
  rows: ScanRow[]
  /** Processes holding sockets to more than one region. */
  dualRegion: { pid: number; command: string | null; regions: string[] }[]
  /** What could not be seen (other users' processes without root, unreadable tables). */
  blind: string[]
}

export interface ScanOptions {
  ports: number[]
  regions?: Regions
  /** Time between the two reads. @default 1000 */
  intervalMs?: number
}

/** Socket inode -> owning process, for every process whose fds we may read. */
export function socketOwners(): { owners: Map<number, { pid: number; command: string | null }>; unreadable: number } {
  const owners = new Map<number, { pid: number; command: string | null }>()
  let unreadable = 0
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const pid = Number(entry)
    let fds: string[]
    try {
      fds = readdirSync(`/proc/${pid}/fd`)
    } catch {
      unreadable++
      continue
    }
    let command: string | null = null
    try {
      command = readFileSync(`/proc/${pid}/comm`, 'utf8').trim()
    } catch {
      // gone
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))
        if (m && !owners.has(Number(m[1]))) owners.set(Number(m[1]), { pid, command })
      } catch {
        // closed meanwhile
      }
    }
  }
  return { owners, unreadable }
}

/** One classification pass over PostgreSQL sockets: the guard's classifier, fed /proc rows. */
export function classifyRows(rows: TcpRow[], memory: Map<number, SocketMemory>, now: number): { verdicts: Map<number, Verdict>; memory: Map<number, SocketMemory> } {
  const sockets: SocketInput[] = rows.map((r) => ({
    id: r.inode,
    endpoint: `${normalizeAddress(r.remoteAddress)}:${r.remotePort}`,
    inUse: r.txQueue > 0,
    queryInFlight: false,
    sample: sampleFromRow(r),
    gone: null,
  }))
  const out = classify({ now, sockets, memory, probes: new Map(), options: GUARD_DEFAULTS })
  return { verdicts: new Map(out.verdicts.map((v) => [v.id, v])), memory: out.memory }
}

export async function scan(options: ScanOptions): Promise<ScanResult> {
  const ports = new Set(options.ports)
  const pick = (): { rows: TcpRow[]; errors: string[] } => {
    const t = readTcpTable(undefined, undefined, (_inode, remotePort) => ports.has(remotePort))
    return { rows: t.rows.filter((r) => r.state !== 10), errors: t.errors }
  }
  const first = pick()
  let { memory } = classifyRows(first.rows, new Map(), Date.now())
  await new Promise((r) => setTimeout(r, options.intervalMs ?? 1000))
  const second = pick()
  const classified = classifyRows(second.rows, memory, Date.now())
  memory = classified.memory
  const { owners, unreadable } = socketOwners()
  const blind = [...first.errors]
  if (unreadable > 0) blind.push(`${unreadable} processes' sockets could not be attributed (not root: only your own processes are visible)`)
  const rows: ScanRow[] = second.rows.map((r) => {
    const owner = owners.get(r.inode)
    const v = classified.verdicts.get(r.inode)
    return {
      pid: owner?.pid ?? null,
      command: owner?.command ?? null,
      local: `${r.localAddress}:${r.localPort}`,
      remote: `${r.remoteAddress}:${r.remotePort}`,
      state: tcpStateName(r.state),
      txQueue: r.txQueue,
      rxQueue: r.rxQueue,
      timer: TIMERS[r.timer] ?? String(r.timer),
      retransmits: r.retransmits,
      probes: r.probes,
      inode: r.inode,
      region: options.regions?.regionOf(r.remoteAddress, r.remoteAddress) ?? null,
      verdict: v?.kind ?? null,
      evidence: v?.evidence ?? null,
    }
  })
  const byPid = new Map<number, Set<string>>()
  for (const r of rows) {
    if (r.pid === null || r.region === null) continue
    const set = byPid.get(r.pid) ?? new Set<string>()
    set.add(r.region)
    byPid.set(r.pid, set)
  }
  const dualRegion = [...byPid].filter(([, s]) => s.size > 1).map(([pid, s]) => ({ pid, command: rows.find((r) => r.pid === pid)?.command ?? null, regions: [...s].sort() }))
  return { rows, dualRegion, blind }
}

export function formatScan(res: ScanResult): string {
  const head = ['PID', 'COMMAND', 'LOCAL', 'REMOTE', 'STATE', 'TX-Q', 'RX-Q', 'TIMER', 'RETR', 'PROBES', 'REGION', 'VERDICT']
  const body = res.rows.map((r) => [
    r.pid ?? '?', r.command ?? '?', r.local, r.remote, r.state, r.txQueue, r.rxQueue, r.timer, r.retransmits, r.probes, r.region ?? '-',
    r.verdict ? `${r.verdict}: ${r.evidence}` : 'ok',
  ].map(String))
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (i === head.length - 1 ? 0 : b[i].length))))
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ')
  const lines = [line(head), ...body.map(line)]
  if (res.rows.length === 0) lines.push('(no connections to the given PostgreSQL ports)')
  for (const d of res.dualRegion) lines.push(`DUAL-REGION: pid ${d.pid} (${d.command ?? '?'}) holds sockets to ${d.regions.join(' and ')}`)
  for (const b of res.blind) lines.push(`note: ${b}`)
  return lines.join('\n')
}

export async function scanCommand(args: string[]): Promise<number> {
  const ports: number[] = []
  let regions: Regions | undefined
  const json = args.includes('--json')
  const watch = args.includes('--watch')
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--port') {
      const p = Number(args[++i])
      if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`--port needs a port number, got ${args[i]}`)
      ports.push(p)
    } else if (args[i] === '--regions') {
      const file = args[++i]
      regions = new Regions(JSON.parse(readFileSync(file, 'utf8')) as Record<string, string[]>)
    } else if (!['--json', '--watch'].includes(args[i])) {
      throw new Error(`scan: unknown argument ${args[i]}`)
    }
  }
  const options = { ports: ports.length ? ports : [5432], regions }
  for (;;) {
    const res = await scan(options)
    if (json) console.log(JSON.stringify(res, null, 2))
    else {
      if (watch) process.stdout.write('\x1b[2J\x1b[H')
      console.log(formatScan(res))
    }
    if (!watch) return res.rows.some((r) => r.verdict !== null) || res.dualRegion.length > 0 ? 1 : 0
  }
}
