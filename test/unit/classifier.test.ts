/**
 * The pure classifier, fed with kernel samples captured from real sockets (test/fixtures/captured.ts) and
 * variations of them. The integration tests in test/kernel prove the same verdicts on live sockets.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type ClassifierOptions, classify, type ProbeResult, rtoElapsedMs, type SocketInput, type SocketMemory } from '../../src/judge/kernel-rules'
import { type KernelSample, sampleFromRow, sampleFromTcpInfo } from '../../src/kernel/sample'
import { parseLine } from '../../src/kernel/proc-net-tcp'
import { parseTcpInfo } from '../../src/kernel/tcp-info'
import { CAPTURED } from '../fixtures/captured'
import { ESTABLISHED_IDLE } from '../fixtures/tcp-info'

const options: ClassifierOptions = { stallMs: 1000, keepAliveIntervalMs: 1000, minRetransmits: 2, stallHardLimitMs: 30_000, probeAfterMs: 2000, graceMs: 500 }
const A = '127.0.0.2:5432'
const B = '127.0.0.3:5432'

const info = (hex: string): KernelSample => sampleFromTcpInfo(parseTcpInfo(Buffer.from(hex, 'hex')))
/** Captured samples. The retransmitting one: 2 retransmits, 1 segment unacked, no ACK for 1.5 s. */
const retransmitting = (o: Partial<KernelSample> = {}): KernelSample => ({ ...info(CAPTURED['unacked-retransmitting'].tcpInfo), ...o })
const keepaliveUnanswered = (o: Partial<KernelSample> = {}): KernelSample => ({ ...info(CAPTURED['keepalive-unanswered'].tcpInfo), ...o })
const closeWait = (): KernelSample => info(CAPTURED['close-wait'].tcpInfo)
/** Idle: nothing outstanding, last ACK long ago. */
const idle = (o: Partial<KernelSample> = {}): KernelSample => ({ ...info(ESTABLISHED_IDLE), msSinceAck: 30_000, msSinceDataRecv: 30_000, ...o })
/** Busy and healthy: ACKs and data arriving. */
const progressing = (o: Partial<KernelSample> = {}): KernelSample => ({ ...info(ESTABLISHED_IDLE), msSinceAck: 3, msSinceDataRecv: 3, ...o })

let nextId = 1
const sock = (endpoint: string, sample: KernelSample | undefined, o: Partial<SocketInput> = {}): SocketInput => ({
  id: nextId++, endpoint, hostKey: endpoint, inUse: true, queryInFlight: true, sample, gone: null, ...o,
})

function run(sockets: SocketInput[], now = 100_000, memory = new Map<number, SocketMemory>(), probes = new Map<string, ProbeResult>()) {
  return classify({ now, sockets, memory, probes, options })
}

describe('classifier', () => {
  it('the captured retransmitting socket has waited at least 3 RTO floors', () => {
    const s = retransmitting()
    assert.equal(s.retransmits, 2)
    assert.equal(s.backoff, 2)
    assert.ok(Math.abs(rtoElapsedMs(s) - 612) < 1, `${rtoElapsedMs(s)}`) // 204 ms x (2^2 - 1)
  })

  it('the same silence on a degraded (lossy) link condemns nothing: a probe decides, and a failed one is host-unresponsive', () => {
    const socks = [1, 2, 3, 4].map(() => sock(A, retransmitting({ msSinceDataSent: 10 })))
    const degraded = new Set([A])
    const first = classify({ now: 100_000, sockets: socks, memory: new Map(), probes: new Map(), options, degraded })
    const second = classify({ now: 100_400, sockets: socks, memory: first.memory, probes: new Map(), options, degraded })
    assert.deepEqual(second.verdicts, [], 'every socket in backoff on a lossy link is not proof of a dead host')
    assert.ok(second.probe.some((p) => p.endpoint === A && p.urgent && /degraded link: a probe decides/.test(p.why)), JSON.stringify(second.probe))
    assert.equal(second.hosts[0].dead, false)
    const failed = new Map<string, ProbeResult>([[A, { endpoint: A, alive: false, startedAt: 100_000, finishedAt: 100_350, error: 'timeout' } as ProbeResult]])
    const third = classify({ now: 100_400, sockets: socks, memory: first.memory, probes: failed, options, degraded })
    assert.deepEqual([...new Set(third.verdicts.map((v) => v.kind))], ['host-unresponsive'])
  })

  it('blackholed host: every socket silent and retransmitting, so all of them (idle ones too) are condemned', () => {
    // Seen 10 ms after their second retransmission: first sent 612 + 10 ms ago.
    const socks = [
      ...[1, 2, 3, 4].map(() => sock(A, retransmitting({ msSinceDataSent: 10 }))),
      sock(A, idle(), { inUse: false, queryInFlight: false }),
      sock(A, idle(), { inUse: false, queryInFlight: false }),
    ]
    const first = run(socks, 100_000)
    assert.deepEqual(first.verdicts, [], 'a 622 ms stall is not yet stallMs')
    assert.deepEqual(first.probe.map((p) => p.endpoint), [A], 'suspicion asks for a probe')
    // 400 ms later the stall is > 1 s.
    const second = run(socks, 100_400, first.memory)
    assert.equal(second.verdicts.length, 6)
    const kinds = second.verdicts.map((v) => v.kind).sort()
    assert.deepEqual(kinds, ['host-dead', 'host-dead', 'zombie-unacked', 'zombie-unacked', 'zombie-unacked', 'zombie-unacked'])
    const z = second.verdicts.find((v) => v.kind === 'zombie-unacked')!
    assert.match(z.evidence, /^2 retransmits, no ACK for 1\.0 s, 0\/6 sockets to 127\.0\.0\.2:5432 progressing$/)
    assert.equal(z.firstEvidenceAt, 100_000 - 10 - 612)
    assert.deepEqual(second.hosts, [{ endpoint: A, sockets: 6, active: 4, progressing: 0, stalled: 4, dead: true }])
  })

  it('the captured retransmitting socket is dated from its send time: 1.3 s of stall at first sight', () => {
    const out = run([sock(A, retransmitting()), sock(A, retransmitting())])
    assert.match(out.verdicts[0].evidence, /^2 retransmits, no ACK for 1\.3 s/)
  })

  it('lossy link: one retransmitting socket among progressing ones is not a zombie, until the hard limit', () => {
    const lossy = sock(A, retransmitting())
    const socks = [lossy, sock(A, progressing()), sock(A, progressing())]
    const t0 = run(socks, 100_000)
    const t1 = run(socks, 101_000, t0.memory)
    assert.deepEqual(t1.verdicts, [])
    assert.deepEqual(t1.probe, [], 'others progress: no suspicion')
    lossy.sample = retransmitting({ retransmits: 7, msSinceAck: 31_000, msSinceDataRecv: 31_000 }) // the clock moved on
    const hard = run(socks, 100_000 + 30_000, t1.memory)
    assert.equal(hard.verdicts.length, 1)
    assert.equal(hard.verdicts[0].id, lossy.id)
    assert.match(hard.verdicts[0].evidence, /hard limit 30\.0 s reached although 2\/3 sockets to 127\.0\.0\.2:5432 progressing/)
  })

  it('a lone active socket needs one more retransmission before its host is called dead', () => {
    const two = sock(A, retransmitting())
    const t0 = run([two], 100_000)
    assert.deepEqual(run([two], 101_000, t0.memory).verdicts, [])
    const three = sock(A, retransmitting({ retransmits: 3, backoff: 3, rtoMs: 1632 }))
    const u0 = run([three], 100_000)
    assert.deepEqual(u0.verdicts.map((v) => v.kind), ['zombie-unacked'], 'three retransmissions: 1.4 s of stall already')
  })

  it('a busy server is not a dead host: siblings heard from after the stall began, though not within stallMs', () => {
    // Captured 2026-11: under 18 % loss one socket stalled 3 s while the server took > 1 s to answer the
    // other seven writers. "No ACK within stallMs" on every socket would have called the host dead.
    const lossy = sock(A, retransmitting({ retransmits: 3, backoff: 3, rtoMs: 1632, msSinceAck: 3000, msSinceDataRecv: 3000 }))
    const waitingOnServer = [1, 2, 3].map(() => sock(A, idle({ msSinceAck: 1500, msSinceDataRecv: 1600 })))
    const out = run([lossy, ...waitingOnServer])
    assert.deepEqual(out.verdicts, [])
    assert.equal(out.hosts[0].progressing, 0, 'nobody progressed within stallMs...')
    assert.equal(out.hosts[0].dead, false, '...but the host was heard from after the stall began')
  })

  it('another host progressing does not save a dead one (consensus is per endpoint)', () => {
    const socks = [sock(A, retransmitting()), sock(A, retransmitting()), sock(B, progressing())]
    const t0 = run(socks, 100_000)
    const t1 = run(socks, 100_500, t0.memory)
    assert.deepEqual(t1.verdicts.map((v) => v.endpoint), [A, A])
  })

  it('keepalive: two unanswered probes on an idle socket condemn it, unless siblings progress', () => {
    const k = sock(A, keepaliveUnanswered(), { inUse: false, queryInFlight: false })
    const alone = run([k])
    assert.equal(alone.verdicts[0].kind, 'zombie-keepalive')
    assert.match(alone.verdicts[0].evidence, /^3 keepalive probes unanswered, no ACK for 3\.5 s, 0\/1 sockets/)
    assert.deepEqual(run([k, sock(A, progressing())]).verdicts, [])
  })

  it('peer-closed after the grace period; vanished after the grace period', () => {
    const cw = sock(A, closeWait())
    const gone = sock(A, undefined, { gone: 'no socket handle' })
    const t0 = run([cw, gone], 100_000)
    assert.deepEqual(t0.verdicts, [], 'pg usually handles these itself within the grace period')
    const t1 = run([cw, gone], 100_600, t0.memory)
    assert.deepEqual(t1.verdicts.map((v) => [v.id, v.kind]), [[cw.id, 'peer-closed'], [gone.id, 'vanished']])
    assert.match(t1.verdicts[0].evidence, /CLOSE_WAIT for 600 ms/)
    assert.match(t1.verdicts[1].evidence, /no socket handle/)
  })

  it('a query waiting with no data and no kernel evidence asks for a probe; a failed probe condemns the host', () => {
    const waiting = sock(A, idle({ msSinceDataRecv: 2500 }))
    const idleToo = sock(A, idle(), { inUse: false, queryInFlight: false })
    const t0 = run([waiting, idleToo], 100_000)
    assert.deepEqual(t0.probe, [], 'just started')
    const t1 = run([waiting, idleToo], 102_100, t0.memory)
    assert.equal(t1.probe.length, 1)
    assert.equal(t1.probe[0].urgent, false)
    assert.match(t1.probe[0].why, /query in flight 2\.1 s with no data and no kernel evidence/)
    const failed: ProbeResult = { endpoint: A, alive: false, startedAt: 102_100, finishedAt: 103_600, error: 'timeout' }
    const t2 = run([waiting, idleToo], 103_600, t1.memory, new Map([[A, failed]]))
    assert.deepEqual(t2.verdicts.map((v) => [v.id, v.kind]), [[waiting.id, 'host-unresponsive'], [idleToo.id, 'host-unresponsive']])
    assert.match(t2.verdicts[0].evidence, /probe of 127\.0\.0\.2:5432 failed after 1\.5 s \(timeout\), a query waited 3\.6 s with no data/)
    assert.equal(t2.verdicts[0].firstEvidenceAt, 100_000, 'the query start')
  })

  it('a live probe counts as progress: a lone stalled socket on a live host is spared', () => {
    const s = sock(A, retransmitting({ retransmits: 3, backoff: 3, rtoMs: 1632 }))
    const alive: ProbeResult = { endpoint: A, alive: true, startedAt: 99_500, finishedAt: 99_800 }
    assert.deepEqual(run([s], 100_000, new Map(), new Map([[A, alive]])).verdicts, [])
  })

  it('/proc fallback: a stall is seen across reads when tx_queue does not move', () => {
    const row = parseLine(CAPTURED['unacked-retransmitting'].proc.split(/: (.*)/s)[1], 4)!
    const socks = [sock(A, sampleFromRow(row)), sock(A, sampleFromRow(row))]
    const t0 = run(socks, 100_000) // the row's RTO (810 ms, backoff taken as 2) dates the stall 607 ms back
    assert.deepEqual(t0.verdicts, [])
    const t1 = run(socks, 100_500, t0.memory)
    assert.deepEqual(t1.verdicts.map((v) => v.kind), ['zombie-unacked', 'zombie-unacked'])
    assert.match(t1.verdicts[0].evidence, /^2 retransmits, no ACK for 1\.1 s/)
  })
})

describe('classifier: probes on a lossy link', () => {
  it('a failed probe does not condemn a host while any of its sockets still receives data', () => {
    const waiting = sock(A, idle({ msSinceDataRecv: 2500 }))
    const busy = sock(A, progressing())
    const failed: ProbeResult = { endpoint: A, alive: false, startedAt: 99_000, finishedAt: 100_000, error: 'lost SYN' }
    assert.deepEqual(run([waiting, busy], 100_000, new Map(), new Map([[A, failed]])).verdicts, [])
  })
})
