/**
 * Pure decoder for Linux `struct tcp_info` (include/uapi/linux/tcp.h). Offsets are fixed by the kernel ABI;
 * fields a shorter (older-kernel) buffer lacks come back as undefined.
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
  /** Segments sent and not yet acknowledged. */
  unacked: number
  /** Segments the kernel believes lost. */
  lost: number
  lastDataSentMs: number
  lastDataRecvMs: number
  /** Milliseconds since the last ACK arrived: the liveness signal for a socket with data in flight. */
  lastAckRecvMs: number
  /** Smoothed RTT, microseconds. */
  rttUs: number
  totalRetrans: number
  bytesAcked?: bigint
  bytesReceived?: bigint
  /** Bytes queued in the socket that the kernel has not sent yet. */
  notsentBytes?: number
}

export function parseTcpInfo(buf: Buffer, length = buf.length): TcpInfo {
  if (length < 104) throw new RangeError(`struct tcp_info too short: ${length} bytes`)
  return {
    state: buf.readUInt8(0),
    retransmits: buf.readUInt8(2),
    probes: buf.readUInt8(3),
    backoff: buf.readUInt8(4),
    rtoUs: buf.readUInt32LE(8),
    unacked: buf.readUInt32LE(24),
    lost: buf.readUInt32LE(32),
    lastDataSentMs: buf.readUInt32LE(44),
    lastDataRecvMs: buf.readUInt32LE(52),
    lastAckRecvMs: buf.readUInt32LE(56),
    rttUs: buf.readUInt32LE(68),
    totalRetrans: buf.readUInt32LE(100),
    bytesAcked: length >= 128 ? buf.readBigUInt64LE(120) : undefined,
    bytesReceived: length >= 136 ? buf.readBigUInt64LE(128) : undefined,
    notsentBytes: length >= 148 ? buf.readUInt32LE(144) : undefined,
  }
}
