/**
 * The checkout rule of the judge, pure: may this idle client be handed out, from one TCP_INFO sample of
 * its socket taken just before (no round trip)? An idle pooled socket has nothing to say: it is
 * ESTABLISHED, has no data in flight, and answers its keepalive probes within a round trip. Anything else
 * means the kernel already distrusts it, and a caller would be the one to find out.
 */
import type { SocketGlance } from '../kernel/sample'
import { TcpState, tcpStateName } from '../kernel/tcp-info'
import { fmt } from '../util/time'

export interface CheckoutOptions {
  /** Silence before the first keepalive probe (the guard's TCP_KEEPIDLE), ms. */
  keepAliveIdleMs: number
  /** Data outstanding with no ACK for this long is a stall (as in the kernel rules), ms. */
  stallMs: number
}

/** A probe answered within this (or 4 RTTs, if more) of being sent is not overdue. */
const PROBE_ANSWER_MS = 200

/** Why the socket must not be handed out, or null when it may. */
export function judgeCheckout(sample: SocketGlance | undefined, o: CheckoutOptions): string | null {
  if (!sample) return 'TCP_INFO failed on its fd: the socket is gone'
  if (sample.state !== TcpState.ESTABLISHED) {
    const closed = sample.state === TcpState.CLOSE_WAIT ? ': the server closed it' : ''
    return `state ${tcpStateName(sample.state)}${closed}`
  }
  if (sample.retransmits > 0) return `${sample.retransmits} retransmission${sample.retransmits > 1 ? 's' : ''} of unacknowledged data`
  const ack = sample.msSinceAck
  if (sample.outstanding && ack !== null && ack >= o.stallMs) return `data unacknowledged, no ACK for ${fmt(ack)}`
  if (sample.probes >= 2) return `${sample.probes} keepalive probes unanswered`
  if (sample.probes === 1) {
    // The first probe leaves after keepAliveIdleMs of silence; one still in flight is no news.
    const silence = minKnown(sample.msSinceAck, sample.msSinceDataRecv)
    const answerMs = Math.max(PROBE_ANSWER_MS, 4 * (sample.rttMs ?? 0))
    if (silence === null || silence >= o.keepAliveIdleMs + answerMs) return `a keepalive probe unanswered, nothing heard for ${silence === null ? '?' : fmt(silence)}`
  }
  return null
}

function minKnown(a: number | null, b: number | null): number | null {
  if (a === null) return b
  if (b === null) return a
  return Math.min(a, b)
}
