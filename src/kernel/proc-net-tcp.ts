/**
 * Pure parser for /proc/net/tcp and /proc/net/tcp6 (net/ipv4/tcp_ipv4.c get_tcp4_sock, tcp6 likewise).
 * Text in, rows out; a line that does not parse is counted in `skipped`, never thrown.
 *
 *   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ...
 *    0: 0200007F:1538 0100007F:A2F4 01 00000000:00000000 02:000003E8 00000000   101        0 83921 ...
 *
 * Addresses are the raw 32-bit words printed in host byte order. `tm->when` and `rto` are in USER_HZ
 * ticks (100 a second). The column labelled "timeout" is icsk_probes_out: keepalive/zero-window probes sent
 * and not answered (or, for a retransmitting socket, the RTO count in older kernels).
 */

export const TimerKind = {
  NONE: 0,
  RETRANSMIT: 1,
  KEEPALIVE: 2,
  TIME_WAIT: 3,
  PROBE: 4,
} as const

export interface TcpRow {
  family: 4 | 6
  localAddress: string
  localPort: number
  remoteAddress: string
  remotePort: number
  /** Kernel TCP state, as in TcpState (01 ESTABLISHED, 08 CLOSE_WAIT, ...). */
  state: number
  /** Bytes sent and not yet acknowledged (write_seq - snd_una) for an established socket. */
  txQueue: number
  rxQueue: number
  /** Which timer is pending: TimerKind. */
  timer: number
  /** Time until that timer fires, ms (may be negative when overdue). */
  timerInMs: number
  /** icsk_retransmits: consecutive unanswered retransmissions. */
  retransmits: number
  uid: number
  /** icsk_probes_out: keepalive or zero-window probes unanswered. */
  probes: number
  inode: number
  /** Retransmission timeout, ms; undefined when the line is short. */
  rtoMs?: number
}

export interface ParseResult {
  rows: TcpRow[]
  /** Lines that were not the header and did not parse. */
  skipped: number
}

const TICK_MS = 10 // USER_HZ = 100
const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

export function parseProcNetTcp(text: string, family: 4 | 6): ParseResult {
  const rows: TcpRow[] = []
  let skipped = 0
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]
    if (line.trim() === '' || (i === 0 && line.includes('local_address'))) continue
    const row = parseLine(line, family)
    if (row) rows.push(row)
    else skipped++
  }
  return { rows, skipped }
}

const HEX = /^[0-9A-Fa-f]+$/

export function parseLine(line: string, family: 4 | 6): TcpRow | undefined {
  const f = line.trim().split(/\s+/)
  // sl local rem st tx:rx tr:when retrnsmt uid timeout inode [refcnt ptr rto ...]
  if (f.length < 10 || !/^\d+:$/.test(f[0])) return undefined
  const local = parseEndpoint(f[1], family)
  const remote = parseEndpoint(f[2], family)
  const [tx, rx] = f[4].split(':')
  const [tr, when] = f[5].split(':')
  if (!local || !remote || !isHex(f[3]) || !isHex(tx) || !isHex(rx) || !isHex(tr) || !isHex(when) || !isHex(f[6])) {
    return undefined
  }
  if (!/^\d+$/.test(f[7]) || !/^\d+$/.test(f[8]) || !/^\d+$/.test(f[9])) return undefined
  const row: TcpRow = {
    family,
    localAddress: local.address,
    localPort: local.port,
    remoteAddress: remote.address,
    remotePort: remote.port,
    state: parseInt(f[3], 16),
    txQueue: parseInt(tx, 16),
    rxQueue: parseInt(rx, 16),
    timer: parseInt(tr, 16),
    timerInMs: (parseInt(when, 16) | 0) * TICK_MS,
    retransmits: parseInt(f[6], 16),
    uid: Number(f[7]),
    probes: Number(f[8]),
    inode: Number(f[9]),
  }
  if (f.length >= 13 && /^\d+$/.test(f[12])) row.rtoMs = Number(f[12]) * TICK_MS
  return row
}

function isHex(s: string | undefined): s is string {
  return s !== undefined && s.length > 0 && s.length <= 16 && HEX.test(s)
}

function parseEndpoint(s: string, family: 4 | 6): { address: string; port: number } | undefined {
  const [addr, port] = s.split(':')
  const width = family === 4 ? 8 : 32
  if (addr === undefined || port === undefined || addr.length !== width || !HEX.test(addr) || !/^[0-9A-Fa-f]{4}$/.test(port)) {
    return undefined
  }
  const bytes: number[] = []
  for (let w = 0; w < width; w += 8) bytes.push(...wordBytes(addr.slice(w, w + 8)))
  return { address: family === 4 ? bytes.join('.') : formatIpv6(bytes), port: parseInt(port, 16) }
}

/** One 32-bit word printed as %08X of a network-order value read in host order. */
function wordBytes(hex: string): number[] {
  const b = [0, 2, 4, 6].map((i) => parseInt(hex.slice(i, i + 2), 16))
  return LE ? b.reverse() : b
}

/** RFC 5952 text; an IPv4-mapped address comes out as ::ffff:a.b.c.d, as Node prints it. */
export function formatIpv6(bytes: number[]): string {
  const isMapped = bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff
  if (isMapped) return `::ffff:${bytes.slice(12).join('.')}`
  const groups: number[] = []
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i] << 8) | bytes[i + 1])
  // longest run of zero groups (length >= 2) becomes "::"
  let best = -1
  let bestLen = 0
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLen && j - i >= 2) {
      best = i
      bestLen = j - i
    }
    i = j
  }
  const hex = groups.map((g) => g.toString(16))
  if (best === -1) return hex.join(':')
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`
}

/** The same endpoint as Node and the kernel may print it: '::ffff:127.0.0.1' and '127.0.0.1' are one address. */
export function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address.toLowerCase()
}
