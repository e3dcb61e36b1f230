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
import { actionFor, VERDICTS, type VerdictKind } from '../../src/judge/verdicts'

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

  it('only kernel and probe verdicts about a whole host mark it down', () => {
    assert.deepEqual(KINDS.filter((k) => VERDICTS[k].marksHostDown).sort(), ['host-dead', 'host-unresponsive'])
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

  it('a verdict resting on the server\'s error to the holder (a 25006) retires an in-use client whatever its row says', () => {
    for (const k of KINDS) {
      assert.equal(actionFor(k, 'in-use', 'destroy', true), 'retire', k)
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
    assert.equal(a.state, 'in-use', 'it finishes its work')
    h.evictor.left(a, 200)
    h.evictor.left(b, 200)
    h.evictor.left(b, 201)
    assert.deepEqual(h.metrics.slice(2), ['evicted fenced true', 'evicted fatal-error true'])
  })

  it('a wrong-role from a 25006 retires the in-use client even with topologyEvictInUse destroy', () => {
    const h = harness('destroy')
    const a = h.client('a', 'in-use')
    assert.equal(h.evictor.evict(a, { ...v('wrong-role'), serverError: true }, 100), 'retire')
    assert.deepEqual(h.calls, [['retire', 'a']])
    assert.deepEqual(h.events.map((e) => [e.reason, e.inUse]), [['wrong-role', true]])
    assert.equal(a.state, 'in-use', 'it leaves when its holder releases it')
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
