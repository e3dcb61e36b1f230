/**
 * The checkout rule of the judge, pure: may this idle client be handed out, from one TCP_INFO sample of
 * its socket taken just before (no round trip)? Only what one socket proves on its own counts: it is no
 * longer ESTABLISHED (the server closed it: CLOSE_WAIT), the kernel has no such socket, or two keepalive
 * probes went unanswered (as the kernel rules' zombie-keepalive). Retransmissions, unacknowledged data and
 * a single late probe are not: a lossy but live link shows them too (18 % loss evicted healthy clients at
 * checkout in a test run when they counted), and the kernel rules judge them with the host's other
 * sockets (host consensus).
 */
import type { SocketGlance } from '../kernel/sample'
import { TcpState, tcpStateName } from '../kernel/tcp-info'
import { fmt } from '../util/time'

/** Why the socket must not be handed out, or null when it may. */
export function judgeCheckout(sample: SocketGlance | undefined): string | null {
  if (!sample) return 'TCP_INFO failed on its fd: the socket is gone'
  if (sample.state !== TcpState.ESTABLISHED) {
    const closed = sample.state === TcpState.CLOSE_WAIT ? ': the server closed it' : ''
    return `state ${tcpStateName(sample.state)}${closed}`
  }
  if (sample.probes >= 2) {
    const silence = sample.msSinceDataRecv ?? sample.msSinceAck
    return `${sample.probes} keepalive probes unanswered${silence === null ? '' : `, nothing heard for ${fmt(silence)}`}`
  }
  return null
}
