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

describe('checkout rule', () => {
  it('a quiet ESTABLISHED socket (built, and captured from a real one) may be handed out', () => {
    assert.equal(judgeCheckout(tcpInfoSample({ lastAckRecvMs: 300_000, lastDataRecvMs: 300_000 })), null)
    assert.equal(judgeCheckout(sampleFromTcpInfo(parseTcpInfo(Buffer.from(ESTABLISHED_IDLE, 'hex'))!)), null)
  })

  it('CLOSE_WAIT and every other state but ESTABLISHED: never', () => {
    assert.equal(judgeCheckout(tcpInfoSample({ state: 8 })), 'state CLOSE_WAIT: the server closed it')
    for (const state of [4, 5, 7, 9, 11]) assert.match(judgeCheckout(tcpInfoSample({ state })) ?? '', /^state [A-Z_0-9]+$/)
  })

  it('the socket is gone (TCP_INFO failed): never', () => {
    assert.match(judgeCheckout(undefined) ?? '', /socket is gone/)
  })

  it('retransmissions and unacknowledged data are not its business: a lossy live link shows them too (the kernel rules judge them with the host\'s other sockets)', () => {
    assert.equal(judgeCheckout(tcpInfoSample({ retransmits: 1, unacked: 1 })), null)
    assert.equal(judgeCheckout(tcpInfoSample({ unacked: 1, lastAckRecvMs: 1000 })), null)
  })

  it('keepalive probes: two unanswered never; one (it may be lost on a lossy link, and is re-sent) is no news', () => {
    assert.equal(judgeCheckout(tcpInfoSample({ probes: 2, lastAckRecvMs: 6000, lastDataRecvMs: 6000 })), '2 keepalive probes unanswered, nothing heard for 6.0 s')
    assert.equal(judgeCheckout(tcpInfoSample({ probes: 1, lastAckRecvMs: 5500, lastDataRecvMs: 9000 })), null)
  })
})
