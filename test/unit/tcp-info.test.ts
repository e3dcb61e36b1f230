import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { sampleFromRow, sampleFromTcpInfo } from '../../src/kernel/sample'
import { parseLine } from '../../src/kernel/proc-net-tcp'
import { parseTcpInfo, type TcpInfo, TcpState, tcpStateName } from '../../src/kernel/tcp-info'
import { CAPTURED } from '../fixtures/captured'
import { ESTABLISHED_IDLE, TCP_INFO_LAYOUT, TCP_INFO_SIZES, tcpInfo, tcpInfoSample } from '../fixtures/tcp-info'

const capturedHex: Record<string, string> = {
  ...Object.fromEntries(Object.entries(CAPTURED).map(([name, c]) => [name, c.tcpInfo])),
  'established-idle': ESTABLISHED_IDLE,
}

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

describe('struct tcp_info fixture builder', () => {
  /** Every decoded field set to a value no other field has (u8s kept in range, u64s beyond 2^32). */
  const every: TcpInfo = {
    state: 8, retransmits: 3, probes: 4, backoff: 5, rtoUs: 816_000, sndMss: 1448, unacked: 7, lost: 6,
    lastDataSentMs: 11, lastDataRecvMs: 12, lastAckRecvMs: 13, rttUs: 104_321, rttVarUs: 2_345, sndCwnd: 14,
    totalRetrans: 15, bytesAcked: 2n ** 40n + 1n, bytesReceived: 2n ** 41n + 2n, segsOut: 16, segsIn: 17,
    notsentBytes: 18, minRttUs: 19, deliveryRate: 2n ** 42n + 3n, bytesSent: 2n ** 43n + 4n, bytesRetrans: 2n ** 44n + 5n,
  }

  it('round-trips every decoded field, at the widest values each width holds too', () => {
    assert.deepEqual(Object.keys(every).sort(), Object.keys(TCP_INFO_LAYOUT).sort(), 'the test sets every field the layout knows')
    assert.deepEqual(parseTcpInfo(tcpInfo(every)), every)
    const widest = Object.fromEntries(Object.entries(TCP_INFO_LAYOUT).map(([k, [, w]]) => [k, w === 'u8' ? 255 : w === 'u32' ? 0xffff_ffff : 2n ** 64n - 1n])) as unknown as TcpInfo
    assert.deepEqual(parseTcpInfo(tcpInfo(widest)), widest)
  })

  it('the layout matches include/uapi/linux/tcp.h: no two fields overlap, all inside the 232 bytes read', () => {
    const spans = Object.entries(TCP_INFO_LAYOUT).map(([k, [o, w]]) => ({ k, o, end: o + (w === 'u8' ? 1 : w === 'u32' ? 4 : 8) })).sort((a, b) => a.o - b.o)
    for (let i = 1; i < spans.length; i++) assert.ok(spans[i].o >= spans[i - 1].end, `${spans[i - 1].k} overlaps ${spans[i].k}`)
    assert.ok(spans.at(-1)!.end <= 232)
    for (const s of spans) assert.equal(s.o % (s.end - s.o), 0, `${s.k} is naturally aligned`)
  })

  it('an older kernel\'s shorter struct: the fields it lacks decode as undefined, and the builder refuses them', () => {
    const at = (length: number) => parseTcpInfo(tcpInfo({}, { length }))
    assert.equal(at(104).bytesAcked, undefined)
    assert.equal(at(104).totalRetrans, 0)
    assert.equal(at(TCP_INFO_SIZES.linux3_15).bytesAcked, undefined)
    assert.equal(at(TCP_INFO_SIZES.linux4_1).segsOut, undefined)
    assert.equal(at(TCP_INFO_SIZES.linux4_1).bytesReceived, 0n)
    assert.equal(at(TCP_INFO_SIZES.linux4_2).notsentBytes, undefined)
    assert.equal(at(TCP_INFO_SIZES.linux4_2).segsOut, 0)
    assert.equal(at(TCP_INFO_SIZES.linux4_6).deliveryRate, undefined)
    assert.equal(at(TCP_INFO_SIZES.linux4_9).deliveryRate, 0n)
    assert.equal(at(TCP_INFO_SIZES.linux4_18).bytesRetrans, undefined, 'bytes_sent/bytes_retrans arrived in 4.19')
    assert.equal(at(TCP_INFO_SIZES.linux4_19).bytesRetrans, 0n)
    assert.throws(() => tcpInfo({ segsOut: 1 }, { length: 136 }), /segsOut \(offset 136\) does not fit in a 136-byte/)
    // The KernelSample says "unknown" (null), not 0, for what the kernel did not report.
    const old = sampleFromTcpInfo(at(104))
    assert.equal(old.segsOut, null)
    assert.equal(old.bytesRetrans, null)
    assert.equal(old.notsentBytes, null)
    assert.equal(old.rttMs, 0.05, 'rtt is in the 104-byte floor')
  })

  it('the captured buffers decode as before (every field the decoder had), and round-trip through the builder', () => {
    // The decode of each captured buffer before the health fields were added, field for field.
    const before: Record<string, (number | bigint)[]> = {
      //                        state retr probes backoff rtoUs  unacked lost lastSent lastRecv lastAck rttUs totalRetr bytesAcked bytesRecv notsent
      'unacked-retransmitting': [1, 2, 0, 2, 816_000, 1, 1, 656, 1524, 1524, 30, 3, 1n, 0n, 0],
      'keepalive-unanswered': [1, 0, 3, 0, 204_000, 0, 0, 3512, 3512, 3512, 27, 0, 1n, 0n, 0],
      'close-wait': [8, 0, 0, 0, 204_000, 0, 0, 0, 0, 0, 13, 0, 1n, 1n, 0],
      'ipv4-mapped-established': [1, 0, 0, 0, 200_000, 0, 0, 0, 0, 0, 21, 0, 1n, 0n, 0],
      'ipv6-established': [1, 0, 0, 0, 200_000, 0, 0, 0, 0, 0, 18, 0, 1n, 0n, 0],
      'established-idle': [1, 0, 0, 0, 204_000, 0, 0, 4, 4, 4, 30, 0, 6n, 5n, 0],
    }
    const legacy = ['state', 'retransmits', 'probes', 'backoff', 'rtoUs', 'unacked', 'lost', 'lastDataSentMs', 'lastDataRecvMs', 'lastAckRecvMs', 'rttUs', 'totalRetrans', 'bytesAcked', 'bytesReceived', 'notsentBytes'] as const
    assert.deepEqual(Object.keys(before).sort(), Object.keys(capturedHex).sort())
    for (const [name, hex] of Object.entries(capturedHex)) {
      const info = parseTcpInfo(Buffer.from(hex, 'hex'))
      assert.deepEqual(legacy.map((k) => info[k]), before[name], name)
      assert.deepEqual(parseTcpInfo(tcpInfo(info)), info, `${name}: builder(decode(buf)) decodes to the same`)
      assert.deepEqual(tcpInfo(info, { base: hex }), Buffer.from(hex, 'hex'), `${name}: writing the decoded fields over the capture changes no byte`)
    }
  })

  it('the new fields of the captured buffers agree with what the capture did', () => {
    // 'SELECT 1' (8 bytes) written once onto a blackholed link and retransmitted 3 times.
    const r = parseTcpInfo(Buffer.from(CAPTURED['unacked-retransmitting'].tcpInfo, 'hex'))
    assert.equal(r.bytesSent, 32n, '4 transmissions x 8 bytes')
    assert.equal(r.bytesRetrans, 24n, '3 retransmissions x 8 bytes')
    assert.equal(r.totalRetrans, 3)
    assert.equal(r.segsOut, 6, 'SYN, ACK, the segment and its 3 retransmissions')
    assert.equal(r.sndCwnd, 1, 'cwnd collapses to 1 after an RTO')
    assert.equal(r.rttVarUs, 15)
    // The echo round trip: 5 bytes out, 5 back.
    const e = parseTcpInfo(Buffer.from(ESTABLISHED_IDLE, 'hex'))
    assert.equal(e.bytesSent, 5n)
    assert.equal(e.bytesRetrans, 0n)
    assert.equal(e.segsOut, 4)
    assert.equal(e.segsIn, 3)
    assert.equal(e.sndCwnd, 11)
    assert.equal(e.minRttUs, 17)
    assert.ok(e.deliveryRate! > 0n)
    const s = sampleFromTcpInfo(r)
    assert.deepEqual(
      { rttMs: s.rttMs, rttVarMs: s.rttVarMs, segsOut: s.segsOut, totalRetrans: s.totalRetrans, bytesRetrans: s.bytesRetrans, notsentBytes: s.notsentBytes, unacked: s.unacked },
      { rttMs: 0.03, rttVarMs: 0.015, segsOut: 6, totalRetrans: 3, bytesRetrans: 24, notsentBytes: 0, unacked: 1 },
    )
  })

  it('a /proc row has no TCP_INFO numbers; its queues are bytes', () => {
    const line = CAPTURED['unacked-retransmitting'].proc.replace(/^tcp6?: /, '')
    const row = parseLine(line, 4)!
    const s = sampleFromRow(row)
    assert.equal(s.txQueue, 8, 'the 8 unacknowledged bytes')
    assert.equal(s.rxQueue, 0)
    for (const k of ['rttMs', 'rttVarMs', 'segsOut', 'segsIn', 'totalRetrans', 'bytesRetrans', 'notsentBytes', 'unacked', 'sndCwnd'] as const) assert.equal(s[k], null, k)
  })

  it('tcpInfoSample gives the sample the guard would take', () => {
    const s = tcpInfoSample({ rttUs: 104_000, rttVarUs: 30_000, segsOut: 50, totalRetrans: 9, unacked: 2, notsentBytes: 100 })
    assert.equal(s.rttMs, 104)
    assert.equal(s.rttVarMs, 30)
    assert.equal(s.outstanding, true)
    assert.equal(s.totalRetrans, 9)
  })
})
