/**
 * The checkout rule without a server: struct tcp_info buffers built from named fields (the fixture
 * builders) and decoded as the kernel port does; which idle sockets may be handed out.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { judgeCheckout } from '../../src/judge/checkout-rules'
import { sampleFromTcpInfo } from '../../src/kernel/sample'
import { parseTcpInfo } from '../../src/kernel/tcp-info'
import { ESTABLISHED_IDLE, tcpInfoSample } from '../fixtures/tcp-info'

const o = { keepAliveIdleMs: 5000, stallMs: 1000 }

describe('checkout rule', () => {
  it('a quiet ESTABLISHED socket (built, and captured from a real one) may be handed out', () => {
    assert.equal(judgeCheckout(tcpInfoSample({ lastAckRecvMs: 300_000, lastDataRecvMs: 300_000 }), o), null)
    assert.equal(judgeCheckout(sampleFromTcpInfo(parseTcpInfo(Buffer.from(ESTABLISHED_IDLE, 'hex'))!), o), null)
  })

  it('CLOSE_WAIT and every other state but ESTABLISHED: never', () => {
    assert.equal(judgeCheckout(tcpInfoSample({ state: 8 }), o), 'state CLOSE_WAIT: the server closed it')
    for (const state of [4, 5, 7, 9, 11]) assert.match(judgeCheckout(tcpInfoSample({ state }), o) ?? '', /^state [A-Z_0-9]+$/)
  })

  it('the socket is gone (TCP_INFO failed): never', () => {
    assert.match(judgeCheckout(undefined, o) ?? '', /socket is gone/)
  })

  it('RTO retransmissions, or data unacknowledged for stallMs: never; data just sent and not yet ACKed: fine', () => {
    assert.equal(judgeCheckout(tcpInfoSample({ retransmits: 1, unacked: 1 }), o), '1 retransmission of unacknowledged data')
    assert.equal(judgeCheckout(tcpInfoSample({ unacked: 1, lastAckRecvMs: 1000 }), o), 'data unacknowledged, no ACK for 1.0 s')
    assert.equal(judgeCheckout(tcpInfoSample({ unacked: 1, lastAckRecvMs: 3 }), o), null)
  })

  it('keepalive probes: two unanswered never; one overdue never; one still within its answer time is no news', () => {
    assert.equal(judgeCheckout(tcpInfoSample({ probes: 2, lastAckRecvMs: 6000, lastDataRecvMs: 6000 }), o), '2 keepalive probes unanswered')
    // Sent at 5.0 s of silence: unanswered 0.5 s later, on a 50 µs link.
    assert.match(judgeCheckout(tcpInfoSample({ probes: 1, lastAckRecvMs: 5500, lastDataRecvMs: 9000 }), o) ?? '', /a keepalive probe unanswered, nothing heard for 5\.5 s/)
    // 20 ms after it left: in flight.
    assert.equal(judgeCheckout(tcpInfoSample({ probes: 1, lastAckRecvMs: 5020, lastDataRecvMs: 5020 }), o), null)
    // A 100 ms RTT link: 4 RTTs to answer.
    assert.equal(judgeCheckout(tcpInfoSample({ probes: 1, lastAckRecvMs: 5300, lastDataRecvMs: 5300, rttUs: 100_000 }), o), null)
    assert.ok(judgeCheckout(tcpInfoSample({ probes: 1, lastAckRecvMs: 5500, lastDataRecvMs: 5500, rttUs: 100_000 }), o))
  })
})
