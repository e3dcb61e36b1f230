/**
 * Pure decoder for Linux `struct tcp_info` (include/uapi/linux/tcp.h). Offsets are fixed by the kernel ABI;
 * the struct only ever grows at its end, so a field a shorter (older-kernel) buffer lacks comes back as
 * undefined. Field offsets, and the kernel that appended each one:
 *
 *     0 u8 state, 1 ca_state, 2 retransmits, 3 probes, 4 backoff, 5 options, 6 wscale, 7 flags
 *     8 rto  12 ato  16 snd_mss  20 rcv_mss  24 unacked  28 sacked  32 lost  36 retrans  40 fackets
 *    44 last_data_sent  48 last_ack_sent  52 last_data_recv  56 last_ack_recv
 *    60 pmtu  64 rcv_ssthresh  68 rtt  72 rttvar  76 snd_ssthresh  80 snd_cwnd  84 advmss  88 reordering
 *    92 rcv_rtt  96 rcv_space  100 total_retrans                                  (104 bytes: the floor)
 *   104 u64 pacing_rate  112 u64 max_pacing_rate                                    (3.15)
 *   120 u64 bytes_acked  128 u64 bytes_received                                     (4.1)
 *   136 segs_out  140 segs_in                                                       (4.2)
 *   144 notsent_bytes  148 min_rtt  152 data_segs_in  156 data_segs_out             (4.6)
 *   160 u64 delivery_rate                                                           (4.9)
 *   168 u64 busy_time  176 u64 rwnd_limited  184 u64 sndbuf_limited                 (4.10)
 *   192 delivered  196 delivered_ce                                                 (4.18)
 *   200 u64 bytes_sent  208 u64 bytes_retrans  216 dsack_dups  220 reord_seen       (4.19)
 *   224 rcv_ooopack  228 snd_wnd                                                    (5.4; 232 bytes)
 * (All u32 unless marked; little-endian on the platforms we run on.)
 */

/** Kernel TCP states (include/net/tcp_states.h), shared with the `st` column of /proc/net/tcp. */
export const TcpState = {
  ESTABLISHED: 1,
  SYN_SENT: 2,
  SYN_RECV: 3,
  FIN_WAIT1: 4,
  FIN_WAIT2: 5,
  TIME_WAIT: 6,
  CLOSE: 7,
  CLOSE_WAIT: 8,
  LAST_ACK: 9,
  LISTEN: 10,
  CLOSING: 11,
} as const

const stateNames: Record<number, string> = Object.fromEntries(Object.entries(TcpState).map(([k, v]) => [v, k]))

export function tcpStateName(state: number): string {
  return stateNames[state] ?? `UNKNOWN(${state})`
}

/** The smallest struct tcp_info any supported kernel writes (up to and including tcpi_total_retrans). */
export const TCP_INFO_MIN_SIZE = 104

export interface TcpInfo {
  state: number
  /** Consecutive RTO retransmissions of the oldest unacked segment (icsk_retransmits). */
  retransmits: number
  /** Keepalive or zero-window probes sent without an answer (icsk_probes_out). */
  probes: number
  /** RTO exponential backoff count. */
  backoff: number
  /** Retransmission timeout, microseconds. */
  rtoUs: number
  /** Sender maximum segment size, bytes. */
  sndMss: number
  /** Segments sent and not yet acknowledged. */
  unacked: number
  /** Segments the kernel believes lost. */
  lost: number
  lastDataSentMs: number
  lastDataRecvMs: number
  /** Milliseconds since the last ACK arrived: the liveness signal for a socket with data in flight. */
  lastAckRecvMs: number
  /** Smoothed RTT (the kernel's srtt, gain 1/8 per measurement), microseconds. */
  rttUs: number
  /** RTT mean deviation, microseconds. */
  rttVarUs: number
  /** Congestion window, segments. */
  sndCwnd: number
  /** Segments retransmitted over the socket's life. */
  totalRetrans: number
  bytesAcked?: bigint
  bytesReceived?: bigint
  /** Segments sent / received over the socket's life, retransmissions and pure ACKs included (4.2+). */
  segsOut?: number
  segsIn?: number
  /** Bytes queued in the socket that the kernel has not sent yet (4.6+). */
  notsentBytes?: number
  /** Lowest RTT seen over the kernel's min-RTT window (tcp_min_rtt_wlen, 300 s by default), microseconds (4.6+). */
  minRttUs?: number
  /** Most recent delivery-rate sample, bytes per second (4.9+). */
  deliveryRate?: bigint
  /** Payload bytes sent, retransmissions included, and bytes retransmitted (4.19+). */
  bytesSent?: bigint
  bytesRetrans?: bigint
}

export function parseTcpInfo(buf: Buffer, length = buf.length): TcpInfo {
  if (length < TCP_INFO_MIN_SIZE) throw new RangeError(`struct tcp_info too short: ${length} bytes`)
  const u32 = (offset: number): number | undefined => (length >= offset + 4 ? buf.readUInt32LE(offset) : undefined)
  const u64 = (offset: number): bigint | undefined => (length >= offset + 8 ? buf.readBigUInt64LE(offset) : undefined)
  return {
    state: buf.readUInt8(0),
    retransmits: buf.readUInt8(2),
    probes: buf.readUInt8(3),
    backoff: buf.readUInt8(4),
    rtoUs: buf.readUInt32LE(8),
    sndMss: buf.readUInt32LE(16),
    unacked: buf.readUInt32LE(24),
    lost: buf.readUInt32LE(32),
    lastDataSentMs: buf.readUInt32LE(44),
    lastDataRecvMs: buf.readUInt32LE(52),
    lastAckRecvMs: buf.readUInt32LE(56),
    rttUs: buf.readUInt32LE(68),
    rttVarUs: buf.readUInt32LE(72),
    sndCwnd: buf.readUInt32LE(80),
    totalRetrans: buf.readUInt32LE(100),
    bytesAcked: u64(120),
    bytesReceived: u64(128),
    segsOut: u32(136),
    segsIn: u32(140),
    notsentBytes: u32(144),
    minRttUs: u32(148),
    deliveryRate: u64(160),
    bytesSent: u64(200),
    bytesRetrans: u64(208),
  }
}
