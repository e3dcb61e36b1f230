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

// One line, anchored: sl, local, remote, st, tx:rx, tr:when, retrnsmt, uid, timeout, inode, then the
// optional refcount, pointer and rto. One compiled regex run over the whole text (multiline, never crossing
// a newline) is ~10x faster than splitting lines on whitespace, which matters at 20k sockets: the table is
// ~4.5 MB of text there.
const H8 = '[0-9A-Fa-f]{8}'
const H4 = '[0-9A-Fa-f]{4}'
const H2 = '[0-9A-Fa-f]{2}'
const lineSource = (addr: string): string =>
  `^[ \\t]*\\d+: (${addr}):(${H4}) (${addr}):(${H4}) (${H2}) (${H8}):(${H8}) (${H2}):(${H8}) (${H8})[ \\t]+(\\d+)[ \\t]+(\\d+) (\\d+)(?: \\d+ [0-9A-Fa-f]+ (\\d+))?(?:[ \\t][^\\n]*)?$`
const SOURCE = { 4: lineSource(H8), 6: lineSource('[0-9A-Fa-f]{32}') }
const LINE = { 4: new RegExp(SOURCE[4]), 6: new RegExp(SOURCE[6]) }

/**
 * A cheap pre-filter, called before a row is built: at 20k sockets building every row costs more than
 * reading the table, and a caller usually wants a handful (its own inodes, one port).
 */
export type RowFilter = (inode: number, remotePort: number) => boolean

export function parseProcNetTcp(text: string, family: 4 | 6, filter?: RowFilter): ParseResult {
  const rows: TcpRow[] = []
  let lines = 0
  let header = 0
  let start = 0
  while (start < text.length) {
    let end = text.indexOf('\n', start)
    if (end === -1) end = text.length
    let i = start
    while (i < end && isBlank(text.charCodeAt(i))) i++
    if (i < end) {
      lines++
      if (start === 0 && text.slice(0, end).includes('local_address')) header = 1
    }
    start = end + 1
  }
  let matched = 0
  const re = new RegExp(SOURCE[family], 'gm')
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    matched++
    if (!filter || filter(Number(m[13]), parseInt(m[4], 16))) rows.push(toRow(m, family))
  }
  return { rows, skipped: lines - header - matched }
}

export function parseLine(line: string, family: 4 | 6): TcpRow | undefined {
  const m = LINE[family].exec(line)
  return m ? toRow(m, family) : undefined
}

function toRow(m: RegExpExecArray, family: 4 | 6): TcpRow {
  const row: TcpRow = {
    family,
    localAddress: formatAddress(m[1], family),
    localPort: parseInt(m[2], 16),
    remoteAddress: formatAddress(m[3], family),
    remotePort: parseInt(m[4], 16),
    state: parseInt(m[5], 16),
    txQueue: parseInt(m[6], 16),
    rxQueue: parseInt(m[7], 16),
    timer: parseInt(m[8], 16),
    timerInMs: (parseInt(m[9], 16) | 0) * TICK_MS,
    retransmits: parseInt(m[10], 16),
    uid: Number(m[11]),
    probes: Number(m[12]),
    inode: Number(m[13]),
  }
  if (m[14] !== undefined) row.rtoMs = Number(m[14]) * TICK_MS
  return row
}

/** What String.prototype.trim() removes, as far as a line can contain it. */
function isBlank(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13) || c === 160 || c === 0xfeff || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x3000 || c === 0x1680 || c === 0x202f || c === 0x205f
}

function formatAddress(hex: string, family: 4 | 6): string {
  if (family === 4) {
    const v = parseInt(hex, 16)
    return LE ? `${v & 255}.${(v >>> 8) & 255}.${(v >>> 16) & 255}.${v >>> 24}` : `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`
  }
  const bytes: number[] = []
  for (let w = 0; w < hex.length; w += 8) bytes.push(...wordBytes(hex.slice(w, w + 8)))
  return formatIpv6(bytes)
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
