/**
 * The replication rule (judge/replication-rules.ts), pure: fixture readings of pg_stat_wal_receiver and
 * pg_stat_replication, a clock we move by hand. Lost only after lostMs of bad readings, ok only after
 * recoverMs of good ones, never an event for a host that never lost its link.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { judgeReplication, type ReplicationMemory, type ReplicationOptions, type ReplicationTransition } from '../../src/judge/replication-rules'
import type { PrimaryReading, ReplicationReading, SenderReading, StandbyReading } from '../../src/topology/replication-query'

const O: ReplicationOptions = { lostMs: 3000, recoverMs: 1000, slackMs: 1000 }

const streaming = (silenceMs = 200): StandbyReading => ({
  side: 'standby', receiver: true, visible: true, status: 'streaming', silenceMs, endAgeMs: silenceMs, upstream: '10.0.0.1:5432', receiverTimeoutMs: 60_000,
})
const noReceiver: StandbyReading = { side: 'standby', receiver: false, visible: false, status: null, silenceMs: null, endAgeMs: null, upstream: null, receiverTimeoutMs: 60_000 }
const sender = (o: Partial<SenderReading> = {}): SenderReading => ({ address: '10.0.0.3', state: 'streaming', replyAgeMs: 300, replayLagS: 0.002, ...o })
const primary = (...senders: SenderReading[]): PrimaryReading => ({ side: 'primary', senders, statusIntervalMs: 10_000 })

/** Feeds readings every 500 ms from t = 0; returns the last output and every transition. */
function run(readings: (ReplicationReading | null)[], options = O, standbyExpected = true) {
  let memory: ReplicationMemory | undefined
  const transitions: ReplicationTransition[] = []
  let last
  readings.forEach((reading, i) => {
    last = judgeReplication({ host: 'h:5432', reading, standbyExpected, memory, now: i * 500, options })
    memory = last.memory
    if (last.transition) transitions.push(last.transition)
  })
  return { last: last!, transitions }
}

const times = <T>(n: number, x: T): T[] => Array.from({ length: n }, () => x)

describe('replication rule', () => {
  it('a streaming standby is streaming at once, with its upstream and the last message age; no event', () => {
    const { last, transitions } = run([streaming(400)])
    assert.equal(last.replication.state, 'streaming')
    assert.equal(last.replication.upstream, '10.0.0.1:5432')
    assert.equal(last.replication.readable, true)
    assert.match(last.replication.detail!, /walreceiver streaming from 10\.0\.0\.1:5432, last message 0\.4 s ago/)
    assert.deepEqual(transitions, [])
  })

  it('no walreceiver: lost after lostMs (not before), with the evidence; ok after recoverMs of streaming', () => {
    const readings = [streaming(), ...times(7, noReceiver), ...times(3, streaming())]
    const out = readings.map((_, i) => run(readings.slice(0, i + 1)))
    // bad from t=500: still streaming at t=3000 (2.5 s), lost at t=3500 (3.0 s)
    assert.equal(out[6].last.replication.state, 'streaming')
    assert.equal(out[6].last.replication.pendingSince, 500)
    assert.equal(out[7].last.replication.state, 'lost')
    const { transitions } = out.at(-1)!
    assert.deepEqual(transitions.map((t) => [t.state, t.at, t.firstEvidenceAt]), [['lost', 3500, 500], ['ok', 5000, 4000]])
    assert.equal(transitions[0].evidence, 'no walreceiver running (not connected to its upstream) for 3.0 s')
    assert.match(transitions[1].evidence, /walreceiver streaming from 10\.0\.0\.1:5432, last message 0\.2 s ago; down for 3\.5 s/)
  })

  it('a streaming walreceiver silent past half of wal_receiver_timeout + slack is bad (the cut the walreceiver sees only at its timeout)', () => {
    // 60 s timeout: healthy up to 31 s of silence (it pings at 30 s)
    assert.equal(run(times(10, streaming(30_900))).last.replication.state, 'streaming')
    const { last, transitions } = run(times(8, streaming(31_500)))
    assert.equal(last.replication.state, 'lost')
    assert.match(transitions[0].evidence, /silent: last message 32 s ago \(a healthy link answers within 30 s, half of wal_receiver_timeout\)/)
  })

  it('wal_receiver_timeout 0: silence cannot be judged, and the reading says so', () => {
    const { last } = run(times(10, { ...streaming(600_000), receiverTimeoutMs: 0 }))
    assert.equal(last.replication.state, 'streaming')
    assert.match(last.replication.why!, /wal_receiver_timeout is 0/)
  })

  it('hysteresis: a link back for one poll among bad ones stays lost, and a short blip never reports', () => {
    const flap = [streaming(), ...times(7, noReceiver), streaming(), ...times(4, noReceiver), streaming(), noReceiver]
    assert.deepEqual(run(flap).transitions.map((t) => t.state), ['lost'])
    const blip = [streaming(), ...times(4, noReceiver), ...times(10, streaming())]
    assert.deepEqual(run(blip).transitions, [])
  })

  it('a walreceiver not streaming (waiting, stopping) is bad', () => {
    const { last } = run(times(8, { ...streaming(), status: 'waiting' }))
    assert.equal(last.replication.state, 'lost')
    assert.equal(last.replication.detail, 'walreceiver waiting from 10.0.0.1:5432')
  })

  it('without pg_monitor: a running walreceiver counts as connected, its absence as lost; readable false, with why', () => {
    const hidden: StandbyReading = { ...noReceiver, receiver: true }
    const { last } = run(times(10, hidden))
    assert.equal(last.replication.state, 'streaming')
    assert.equal(last.replication.readable, false)
    assert.match(last.replication.why!, /not visible \(needs pg_monitor\)/)
    assert.equal(run([hidden, ...times(8, noReceiver)]).last.replication.state, 'lost')
  })

  it('a primary with a streaming standby: streaming, its count and the largest replay lag', () => {
    const { last } = run([primary(sender({ replayLagS: 0.004 }), sender({ replayLagS: 0.25 }))])
    assert.equal(last.replication.state, 'streaming')
    assert.equal(last.replication.standbys, 2)
    assert.equal(last.replication.lagSeconds, 0.25)
    assert.equal(last.replication.detail, '2 standbys streaming, replay lag 0.3 s')
  })

  it('a primary whose standby went away, or stopped replying beyond wal_receiver_status_interval + slack, is lost', () => {
    assert.deepEqual(run([primary(sender()), ...times(8, primary())]).transitions.map((t) => t.evidence), ['no standby connected for 3.0 s'])
    const stale = run([primary(sender()), ...times(8, primary(sender({ replyAgeMs: 11_500 })))])
    assert.equal(stale.last.replication.state, 'lost')
    assert.match(stale.transitions[0].evidence, /no standby replied within 11 s .*last reply 12 s ago/)
    assert.equal(run(times(8, primary(sender({ state: 'catchup' })))).last.replication.state, 'lost')
  })

  it('a primary with no standby in a one-host pool is unknown (none expected), unless it had one before', () => {
    const alone = run(times(10, primary()), O, false)
    assert.equal(alone.last.replication.state, 'unknown')
    assert.match(alone.last.replication.why!, /no standby expected/)
    assert.deepEqual(alone.transitions, [])
    assert.equal(run([primary(sender()), ...times(8, primary())], O, false).last.replication.state, 'lost')
  })

  it('unreachable or unavailable: unknown with why, no event; ok follows a lost even across unknown', () => {
    const u = run([streaming(), null])
    assert.equal(u.last.replication.state, 'unknown')
    assert.equal(u.last.replication.why, 'host not reachable')
    assert.deepEqual(u.transitions, [])
    const old = run([{ side: 'unavailable', why: 'unavailable: relation "pg_stat_wal_receiver" does not exist (42P01)' }])
    assert.equal(old.last.replication.state, 'unknown')
    assert.match(old.last.replication.why!, /42P01/)
    const across = run([streaming(), ...times(7, noReceiver), null, null, ...times(3, streaming())])
    assert.deepEqual(across.transitions.map((t) => t.state), ['lost', 'ok'])
  })

  it('a standby promoted while lost stays lost until the new primary has a standby', () => {
    const { transitions, last } = run([streaming(), ...times(7, noReceiver), ...times(4, primary()), ...times(3, primary(sender()))])
    assert.deepEqual(transitions.map((t) => t.state), ['lost', 'ok'])
    assert.equal(last.replication.standbys, 1)
  })
})
