/**
 * pg-pool-guard scan: this host's connections to PostgreSQL, from the kernel's socket table, with the
 * verdicts the guard itself would reach (the same classifier, fed /proc rows), the process owning each
 * socket, its region, and the processes that hold sockets to more than one region.
 *
 * The table is read twice, a second apart (or continuously with --watch): a stall is a change over time.
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs'
import { basename } from 'node:path'
import { classify, type SocketInput, type SocketMemory, type SocketVerdict } from '../judge/kernel-rules'
import { sampleFromRow } from '../kernel/sample'
import { normalizeAddress, type TcpRow } from '../kernel/proc-net-tcp'
import { fdInode, readTcpTable } from '../kernel/reader'
import { GUARD_DEFAULTS } from '../options'
import { tcpStateName } from '../kernel/tcp-info'
import { Regions } from '../topology/regions'
import { ErrorCodes } from '../errors'
import { CliError, CliErrorCodes, UsageError } from './errors'
import { parseJsonText, readInputFile } from './input'
import { print } from './output'

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
    const command = processName(pid)
    for (const fd of fds) {
      const inode = fdInode(pid, fd) // null: closed meanwhile, or not a socket
      if (inode !== null && !owners.has(inode)) owners.set(inode, { pid, command })
    }
  }
  return { owners, unreadable }
}

/**
 * A process's command name: the base name of argv[0] (from /proc/PID/cmdline), else of /proc/PID/exe,
 * else /proc/PID/comm. Not comm first: it is the name of the main *thread*, which Node 24 renames to
 * "MainThread" and Node 26 to "node-MainThread". Only argv[0]: the other arguments may hold a connection
 * string with a password.
 */
export function processName(pid: number, proc = '/proc'): string | null {
  const clean = (s: string): string | null => {
    const name = basename(s.trim()).replace(/^-/, '') // a login shell's argv[0] is "-bash"
    return name === '' ? null : name
  }
  // comm is a name already, not a path: kernel threads are called "kworker/0:1".
  const asIs = (s: string): string | null => (s.trim() === '' ? null : s.trim())
  try {
    const cmdline = readFileSync(`${proc}/${pid}/cmdline`, 'utf8')
    // A process that set its title (process.title, setproctitle) may have one string with spaces.
    const argv0 = cmdline.split('\0')[0]
    const name = clean(cmdline.includes('\0') ? argv0 : argv0.split(' ')[0])
    if (name) return name
  } catch {
    // gone, or not ours to read
  }
  try {
    const name = clean(readlinkSync(`${proc}/${pid}/exe`).replace(/ \(deleted\)$/, ''))
    if (name) return name
  } catch {
    // a kernel thread, or not ours
  }
  try {
    return asIs(readFileSync(`${proc}/${pid}/comm`, 'utf8'))
  } catch {
    return null
  }
}

/** One classification pass over PostgreSQL sockets: the guard's classifier, fed /proc rows. */
export function classifyRows(rows: TcpRow[], memory: Map<number, SocketMemory>, now: number): { verdicts: Map<number, SocketVerdict>; memory: Map<number, SocketMemory> } {
  const sockets: SocketInput[] = rows.map((r) => ({
    id: r.inode,
    endpoint: `${normalizeAddress(r.remoteAddress)}:${r.remotePort}`,
    hostKey: `${normalizeAddress(r.remoteAddress)}:${r.remotePort}`,
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
      if (!Number.isInteger(p) || p < 1 || p > 65535) throw new UsageError(`--port needs a port number, got ${args[i] ?? 'nothing'}`)
      ports.push(p)
    } else if (args[i] === '--regions') {
      const file = args[++i]
      if (file === undefined) throw new UsageError('--regions needs a JSON file')
      regions = loadRegions(file)
    } else if (!['--json', '--watch'].includes(args[i])) {
      throw new UsageError(`scan: unknown argument ${args[i]}`)
    }
  }
  const options = { ports: ports.length ? ports : [5432], regions }
  for (;;) {
    const res = await scan(options)
    if (json) print(JSON.stringify(res, null, 2))
    else {
      if (watch) process.stdout.write('\x1b[2J\x1b[H')
      print(formatScan(res))
    }
    if (!watch) return res.rows.some((r) => r.verdict !== null) || res.dualRegion.length > 0 ? 1 : 0
  }
}

/** The --regions file: the same map as guard.regions, `{ "eu-west-1": ["10.1.0.0/16", "db-eu"] }`. */
function loadRegions(file: string): Regions {
  const map = parseJsonText(readInputFile(file, 'scan: the regions file'), `scan: ${file}`)
  if (typeof map !== 'object' || map === null || Array.isArray(map)) {
    throw new CliError(CliErrorCodes.INPUT_INVALID_JSON, `scan: ${file} holds JSON but not an object of region -> hosts and CIDRs`)
  }
  try {
    return new Regions(map as Record<string, string[]>)
  } catch (err) {
    const e = err as Error & { code?: string }
    if (e.code !== ErrorCodes.CONFIG_INVALID) throw new CliError(CliErrorCodes.INPUT_INVALID_JSON, `scan: ${file}: ${e.message.replace(/^pg-pool-guard: /, '')}`)
    throw new CliError(ErrorCodes.CONFIG_INVALID, `scan: ${file}: ${e.message.replace(/^pg-pool-guard: /, '')}`, 2)
  }
}
