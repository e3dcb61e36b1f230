import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { formatIpv6, normalizeAddress, parseLine, parseProcNetTcp, TimerKind } from '../../src/kernel/proc-net-tcp'
import { readTcpTable } from '../../src/kernel/reader'
import { TcpState } from '../../src/kernel/tcp-info'
import { CAPTURED } from '../fixtures/captured'

const HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode'
const line = (label: string): [string, 4 | 6] => {
  const [file, text] = CAPTURED[label].proc.split(/: (.*)/s)
  return [text, file === 'tcp6' ? 6 : 4]
}

describe('/proc/net/tcp parser (lines captured from real sockets)', () => {
  it('a socket with unacked data being retransmitted', () => {
    const row = parseLine(...line('unacked-retransmitting'))!
    assert.equal(row.state, TcpState.ESTABLISHED)
    assert.equal(row.localAddress, '127.0.0.1')
    assert.equal(row.remoteAddress, '127.0.0.250')
    assert.equal(row.txQueue, 8, "'SELECT 1' unacknowledged")
    assert.equal(row.timer, TimerKind.RETRANSMIT)
    assert.equal(row.retransmits, 2)
    assert.equal(row.probes, 0)
    assert.equal(row.rtoMs, 810)
    assert.ok(row.inode > 0)
  })

  it('a socket whose keepalive probes go unanswered', () => {
    const row = parseLine(...line('keepalive-unanswered'))!
    assert.equal(row.timer, TimerKind.KEEPALIVE)
    assert.equal(row.probes, 3)
    assert.equal(row.txQueue, 0)
    assert.equal(row.retransmits, 0)
  })

  it('CLOSE_WAIT, IPv4-mapped IPv6 and IPv6', () => {
    assert.equal(parseLine(...line('close-wait'))!.state, TcpState.CLOSE_WAIT)
    const mapped = parseLine(...line('ipv4-mapped-established'))!
    assert.equal(mapped.family, 6)
    assert.equal(mapped.remoteAddress, '::ffff:127.0.0.1')
    assert.equal(normalizeAddress(mapped.remoteAddress), '127.0.0.1')
    const v6 = parseLine(...line('ipv6-established'))!
    assert.equal(v6.remoteAddress, '::1')
    assert.equal(v6.localAddress, '::1')
  })

  it('a whole table: header skipped, every row parsed', () => {
    const text = [HEADER, line('unacked-retransmitting')[0], line('keepalive-unanswered')[0], ''].join('\n')
    const { rows, skipped } = parseProcNetTcp(text, 4)
    assert.equal(rows.length, 2)
    assert.equal(skipped, 0)
  })

  it('formats IPv6 per RFC 5952', () => {
    const b = (hex: string) => hex.match(/../g)!.map((x) => parseInt(x, 16))
    assert.equal(formatIpv6(b('20010db8000000000000000000000001')), '2001:db8::1')
    assert.equal(formatIpv6(b('00000000000000000000000000000000')), '::')
    assert.equal(formatIpv6(b('fe800000000000000202b3fffe1e8329')), 'fe80::202:b3ff:fe1e:8329')
    assert.equal(formatIpv6(b('20010db8000100000001000000000001')), '2001:db8:1:0:1::1')
  })

  it('fuzz: malformed and truncated lines never throw, and each is counted once as a row or a skip', () => {
    const seeds = Object.values(CAPTURED).map((c) => c.proc.split(/: (.*)/s)[1])
    let state = 0x2545f491 // xorshift32, seeded: the same cases every run
    const rand = (n: number): number => {
      state ^= state << 13
      state ^= state >>> 17
      state ^= state << 5
      return (state >>> 0) % n
    }
    const mutate = (s: string): string => {
      switch (rand(6)) {
        case 0: return s.slice(0, rand(s.length + 1)) // truncated
        case 1: return s.replace(/[0-9A-F]/, () => 'G:Z'[rand(3)]) // not hex
        case 2: return s.split(/\s+/).filter(() => rand(4) > 0).join(' ') // columns missing
        case 3: return s + ' ' + 'x'.repeat(rand(50)) // trailing junk
        case 4: return Array.from({ length: rand(80) }, () => String.fromCharCode(32 + rand(95))).join('') // noise
        default: return s.replace(/:/g, () => (rand(2) ? ':' : '')) // separators lost
      }
    }
    for (let i = 0; i < 5000; i++) {
      const lines = Array.from({ length: 1 + rand(5) }, () => mutate(seeds[rand(seeds.length)]))
      const text = lines.join('\n')
      const family = rand(2) ? 4 : 6
      const res = parseProcNetTcp(text, family) // must not throw
      const counted = lines.filter((l, idx) => l.trim() !== '' && !(idx === 0 && l.includes('local_address'))).length
      assert.equal(res.rows.length + res.skipped, counted, JSON.stringify(lines))
      for (const r of res.rows) assert.ok(Number.isInteger(r.inode) && r.localPort >= 0 && r.localPort < 65536)
    }
  })

  it('the reader reports a missing table instead of throwing', () => {
    const t = readTcpTable(() => {
      throw Object.assign(new Error('nope'), { code: 'ENOENT' })
    })
    assert.deepEqual(t.rows, [])
    assert.equal(t.errors.length, 2)
    assert.match(t.errors[0], /tcp: ENOENT/)
  })
})
