/**
 * The verdict table and the one evictor, without a server: every verdict has a row, each row's action per
 * phase is what the table says, and the evictor does exactly that action, emits one event and counts once.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Client } from 'pg'
import { ConnectionEvictedError, ErrorCodes } from '../../src/errors'
import { type EvictionEvent, Evictor } from '../../src/guard/evictor'
import { Registry } from '../../src/guard/registry'
import { judge, judgeEvent } from '../../src/judge/judge'
import { HEALTH_DEFAULTS } from '../../src/judge/health-rules'
import { GUARD_DEFAULTS } from '../../src/options'
import { actionFor, marksHostDown, VERDICTS, type VerdictKind } from '../../src/judge/verdicts'

const KINDS = Object.keys(VERDICTS) as VerdictKind[]

describe('the verdict table', () => {
  it('one row per verdict, with the actions each phase allows', () => {
    assert.deepEqual(KINDS.sort(), [
      'checkout-distrusted', 'connect-timeout', 'dual-region', 'fatal-error', 'fenced', 'host-dead', 'host-unresponsive', 'peer-closed', 'rerouted',
      'server-going-away', 'stale-dns', 'vanished', 'wrong-role', 'zombie-keepalive', 'zombie-unacked',
    ])
    for (const k of KINDS) {
      const r = VERDICTS[k]
      assert.ok(['remove', 'none'].includes(r.idle), k)
      assert.ok(['destroy', 'retire', 'topology-policy'].includes(r.inUse), k)
      assert.ok(r.means.length > 10, k)
    }
  })

  it('only kernel and probe verdicts mark a host down: about the whole host always, a stalled socket only with the host consensus', () => {
    assert.deepEqual(KINDS.filter((k) => marksHostDown(k, false)).sort(), ['host-dead', 'host-unresponsive'])
    assert.deepEqual(KINDS.filter((k) => marksHostDown(k, true)).sort(), ['host-dead', 'host-unresponsive', 'zombie-keepalive', 'zombie-unacked'])
    for (const k of KINDS) if (VERDICTS[k].marksHostDown !== 'never') assert.ok(VERDICTS[k].recheckHost, `${k}: a host marked down is read again`)
  })

  it('the judge reads the host columns: a server error whose row says recheckHost has its host read again now', () => {
    const said = (code: string, severity = 'FATAL') =>
      judgeEvent({ kind: 'server-said', now: 1, id: 7, hostKey: 'db:5432', severity, code, message: 'm', needsWriter: true, connecting: false })
    const goingAway = said('57P01')
    assert.deepEqual(goingAway.verdicts.map((v) => v.kind), ['server-going-away'])
    assert.deepEqual([...goingAway.rechecks], ['db:5432'])
    const fatal = said('28000')
    assert.deepEqual(fatal.verdicts.map((v) => v.kind), ['fatal-error'])
    assert.deepEqual([...fatal.rechecks], [], 'fatal-error: recheckHost false')
    const readOnly = said('25006', 'ERROR')
    assert.deepEqual(readOnly.verdicts.map((v) => [v.kind, v.serverError]), [['wrong-role', true]])
    assert.deepEqual([...readOnly.rechecks], ['db:5432'])
    // While connecting, pg fails the connect with the server's own error: nothing to evict, the host still read again.
    const connecting = judgeEvent({ kind: 'server-said', now: 1, id: 7, hostKey: 'db:5432', severity: 'FATAL', code: '57P03', message: 'm', needsWriter: true, connecting: true })
    assert.deepEqual([connecting.verdicts.length, [...connecting.rechecks]], [0, ['db:5432']])
  })

  it('a login the check refused is ended quietly, whatever the verdict', () => {
    for (const k of KINDS) assert.equal(actionFor(k, 'login', 'destroy'), 'refuse', k)
    const j = judgeEvent({ kind: 'login', now: 1, id: 3, login: { hostKey: 'db:5432', require: 'primary', role: { inHotStandby: true, readOnly: true }, server: null, pooler: false, hostFenced: null } })
    assert.equal(j.login?.ok, false)
    assert.deepEqual(j.verdicts.map((v) => [v.id, v.kind]), [[3, 'wrong-role']])
  })

  it('the safety rule spares every kernel verdict except the kernel\'s final word', () => {
    const spared = KINDS.filter((k) => VERDICTS[k].source === 'kernel' && !VERDICTS[k].definitive).sort()
    assert.deepEqual(spared, ['host-dead', 'zombie-keepalive', 'zombie-unacked'])
  })

  it('actions per phase: topology verdicts follow topologyEvictInUse, the server\'s own word and rerouted retire, nothing else is gentle', () => {
    for (const k of KINDS) {
      const server = VERDICTS[k].source === 'server'
      assert.equal(actionFor(k, 'connecting', 'destroy'), server ? 'none' : 'fail', k)
      assert.equal(actionFor(k, 'idle', 'destroy'), server ? 'none' : 'remove', k)
      const topology = VERDICTS[k].source === 'topology'
      // rerouted: the session's server is still fine (else fenced or wrong-role): it moves when released.
      const gentle = server || k === 'rerouted'
      assert.equal(actionFor(k, 'in-use', 'destroy'), gentle ? 'retire' : 'destroy', k)
      assert.equal(actionFor(k, 'in-use', 'release'), topology || server ? 'retire' : 'destroy', k)
    }
    assert.deepEqual(KINDS.filter((k) => VERDICTS[k].source === 'server').sort(), ['fatal-error', 'server-going-away'])
  })

  it('a verdict resting on the server\'s error to the holder (a 25006, a FATAL) retires an in-use client: never destroyed under its error', () => {
    assert.deepEqual(KINDS.filter((k) => VERDICTS[k].onServerError !== null).sort(), ['fatal-error', 'server-going-away', 'wrong-role'])
    for (const k of KINDS) {
      assert.equal(actionFor(k, 'in-use', 'destroy', true), VERDICTS[k].onServerError ?? actionFor(k, 'in-use', 'destroy'), k)
      assert.equal(actionFor(k, 'idle', 'destroy', true), VERDICTS[k].idle, k)
      assert.equal(actionFor(k, 'connecting', 'destroy', true), VERDICTS[k].connecting, k)
    }
  })
})

type Call = [string, string, string?]

function harness(topologyEvictInUse: 'destroy' | 'release' = 'destroy') {
  const calls: Call[] = []
  const metrics: string[] = []
  const events: EvictionEvent[] = []
  const idle = new Set<Client>()
  const registry = new Registry({ transitioned: () => {}, connectDeadline: () => {} }, () => 0)
  const name = new Map<Client, string>()
  const evictor = new Evictor(
    registry,
    {
      isIdle: (c) => idle.has(c),
      removeIdle: (c) => calls.push(['remove', name.get(c)!]),
      destroy: (c, err) => calls.push(['destroy', name.get(c)!, (err as ConnectionEvictedError).code]),
      retire: (c) => calls.push(['retire', name.get(c)!]),
      failConnect: (c, err) => calls.push(['fail', name.get(c)!, (err as ConnectionEvictedError).code]),
      refuse: (c) => calls.push(['refuse', name.get(c)!]),
    },
    topologyEvictInUse,
    { verdict: (k) => metrics.push(`verdict ${k}`), evicted: (r, inUse) => metrics.push(`evicted ${r} ${inUse}`) },
    (e) => events.push(e)
  )
  const client = (n: string, state: 'connecting' | 'idle' | 'in-use') => {
    const c = { host: '10.0.0.1', port: 5432 } as unknown as Client
    name.set(c, n)
    const rec = registry.add(c, '10.0.0.1', 5432, null, 0)
    if (state !== 'connecting') registry.transition(rec, state, 1)
    if (state === 'idle') idle.add(c)
    return rec
  }
  return { calls, metrics, events, registry, evictor, client }
}

describe('the evictor', () => {
  const v = (kind: VerdictKind) => ({ kind, evidence: 'because', firstEvidenceAt: 10 })

  it('does what the table says, once per connection, with one event and one count each', () => {
    const h = harness()
    const a = h.client('a', 'idle')
    const b = h.client('b', 'in-use')
    const c = h.client('c', 'connecting')
    h.evictor.evict(a, v('host-dead'), 100)
    h.evictor.evict(b, v('zombie-unacked'), 100)
    h.evictor.evict(c, v('connect-timeout'), 100)
    h.evictor.evict(b, v('fenced'), 101) // already condemned: nothing more
    assert.deepEqual(h.calls, [['remove', 'a'], ['destroy', 'b', ErrorCodes.CONNECTION_EVICTED], ['fail', 'c', ErrorCodes.CONNECTION_EVICTED]])
    assert.deepEqual(h.events.map((e) => [e.reason, e.inUse]), [['host-dead', false], ['zombie-unacked', true], ['connect-timeout', false]])
    assert.deepEqual(h.metrics.filter((m) => m.startsWith('evicted')), ['evicted host-dead false', 'evicted zombie-unacked true', 'evicted connect-timeout false'])
    assert.deepEqual([a.state, b.state, c.state], ['evicting', 'evicting', 'evicting'])
  })

  it("retired clients (topologyEvictInUse 'release', FATAL) count when they leave, not before", () => {
    const h = harness('release')
    const a = h.client('a', 'in-use')
    const b = h.client('b', 'in-use')
    h.evictor.evict(a, v('fenced'), 100)
    h.evictor.evict(b, v('fatal-error'), 100)
    assert.deepEqual(h.calls, [['retire', 'a'], ['retire', 'b']])
    assert.deepEqual(h.metrics, ['verdict fenced', 'verdict fatal-error'])
    assert.equal(a.state, 'retiring', 'it finishes its work, then leaves')
    // As the guard's lifecycle does when pg-pool removes a client: counted, then the record ends.
    const gone = (r: typeof a, at: number) => {
      h.evictor.left(r, at)
      h.registry.transition(r, 'ended', at)
    }
    gone(a, 200)
    gone(b, 200)
    h.evictor.left(b, 201) // a late second word about it: already gone, not counted again
    assert.deepEqual(h.metrics.slice(2), ['evicted fenced true', 'evicted fatal-error true'])
  })

  it('a wrong-role from a 25006 retires the in-use client even with topologyEvictInUse destroy', () => {
    const h = harness('destroy')
    const a = h.client('a', 'in-use')
    assert.equal(h.evictor.evict(a, { ...v('wrong-role'), serverError: true }, 100), 'retire')
    assert.deepEqual(h.calls, [['retire', 'a']])
    assert.deepEqual(h.events.map((e) => [e.reason, e.inUse]), [['wrong-role', true]])
    assert.equal(a.state, 'retiring', 'it leaves when its holder releases it')
  })

  it('a FATAL on an idle client is left to pg-pool (its error listener removes it), counted when it leaves', () => {
    const h = harness()
    const a = h.client('a', 'idle')
    assert.equal(h.evictor.evict(a, v('fatal-error'), 100), 'none')
    assert.deepEqual(h.calls, [])
    h.evictor.left(a, 150)
    assert.deepEqual(h.metrics, ['verdict fatal-error', 'evicted fatal-error false'])
  })
})

describe('the judge: hosts down and up', () => {
  const tick = (reachability: { key: string; reachable: boolean; why: string | null; at: number }[]) =>
    judge({ now: 1000, kernel: null, topology: null, reachability })

  it("a host its monitor cannot reach is marked down (no verdict, no attempt abandoned); one that answers again, up", () => {
    const j = tick([
      { key: 'a:5432', reachable: false, why: 'monitor: connect ETIMEDOUT', at: 900 },
      { key: 'b:5432', reachable: true, why: null, at: 950 },
    ])
    assert.deepEqual([...j.unreachable], [['a:5432', 'monitor: connect ETIMEDOUT']])
    assert.deepEqual([...j.hostsUp], ['b:5432'])
    assert.deepEqual([j.verdicts.length, j.hostsDown.size, j.rechecks.size], [0, 0, 0])
  })

  it('a host judged gone this tick stays down whatever an older answer said', () => {
    const j = judge({
      now: 1000, kernel: null, topology: null,
      attempts: [{ id: 4, hostKey: 'a:5432' }],
      reachability: [{ key: 'a:5432', reachable: true, why: null, at: 100 }],
    })
    assert.equal(j.hostsUp.size, 1, 'no verdict this tick: up')
    // The same answer beside a verdict that marks the host down (the kernel's host consensus, say) is outvoted.
    const verdictTick = judgeDown('a:5432')
    assert.deepEqual([...verdictTick.hostsUp], [])
    assert.ok(verdictTick.hostsDown.has('a:5432'))
    assert.deepEqual(verdictTick.verdicts.map((v) => [v.id, v.kind]).filter(([id]) => id === 4), [[4, 'host-dead']], 'the attempt in flight to it is abandoned')
  })
})

/** A tick whose kernel facts make the host consensus find `key` dead: two sockets stalled, nothing heard since. */
function judgeDown(key: string) {
  const stalled = (id: number) => ({
    id, endpoint: '10.0.0.1:5432', hostKey: key, inUse: true, queryInFlight: true, gone: null,
    sample: {
      source: 'tcp_info' as const, state: 1, outstanding: true, retransmits: 5, probes: 0, rtoMs: 3200, backoff: 5,
      msSinceAck: 60_000, msSinceDataRecv: 60_000, msSinceDataSent: 100, txQueue: 10, bytesReceived: 100n, bytesAcked: 100n, totalRetrans: 5,
    },
  })
  return judge({
    now: 100_000,
    kernel: {
      sockets: [stalled(1), stalled(2)], memory: new Map(), probes: new Map(), options: { ...GUARD_DEFAULTS }, classify: true,
      health: { memory: new Map(), options: HEALTH_DEFAULTS }, degradedHosts: new Map(),
    },
    topology: null,
    attempts: [{ id: 4, hostKey: key }],
    reachability: [{ key, reachable: true, why: null, at: 100 }],
  })
}
