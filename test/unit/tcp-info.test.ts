import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { parseTcpInfo, TcpState, tcpStateName } from '../../src/kernel/tcp-info'
import { ESTABLISHED_IDLE } from '../fixtures/tcp-info'

describe('parseTcpInfo (captured struct tcp_info)', () => {
  it('decodes an established loopback socket after a round trip', () => {
    const info = parseTcpInfo(Buffer.from(ESTABLISHED_IDLE, 'hex'))
    assert.equal(info.state, TcpState.ESTABLISHED)
    assert.equal(tcpStateName(info.state), 'ESTABLISHED')
    assert.equal(info.retransmits, 0)
    assert.equal(info.probes, 0)
    assert.equal(info.unacked, 0)
    assert.equal(info.rtoUs, 204_000, 'loopback: RTO at its 200 ms floor + 4 ms')
    assert.equal(info.bytesAcked, 6n, '5 bytes of data + the SYN')
    assert.equal(info.bytesReceived, 5n)
    assert.ok(info.lastAckRecvMs < 1000)
  })

  it('leaves newer fields undefined for an older, shorter struct, and rejects a truncated one', () => {
    const buf = Buffer.from(ESTABLISHED_IDLE, 'hex')
    const old = parseTcpInfo(buf, 104)
    assert.equal(old.bytesAcked, undefined)
    assert.equal(old.state, TcpState.ESTABLISHED)
    assert.throws(() => parseTcpInfo(buf, 60), RangeError)
  })

  it('names unknown states', () => {
    assert.equal(tcpStateName(8), 'CLOSE_WAIT')
    assert.equal(tcpStateName(99), 'UNKNOWN(99)')
  })
})
