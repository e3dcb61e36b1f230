/**
 * Host health (src/judge/health-rules.ts), fed with KernelSamples decoded from struct tcp_info buffers that
 * the fixture builder makes: a small simulation of request/response writers (the kernel's srtt with gain
 * 1/8, Karn's rule, RTO waits on loss), seeded, at the guard's 250 ms check interval.
 */
import { seededRandom } from '../../src/testing/toxics/toxic'
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  assessHealth, HEALTH_DEFAULTS, HEALTH_DEFAULTS_TABLE, type HealthOptions, type HealthTransition,
  hostHealth, type HostHealthMemory, rttLimitMs,
} from '../../src/judge/health-rules'
import { tcpInfoSample } from '../fixtures/tcp-info'

const TICK_MS = 250
const A = '127.0.0.2:5432'
const B = '127.0.0.3:5432'

const rng = seededRandom

interface Link {
  /** One round trip, ms (before any added latency). */
  rttMs: () => number
  addedLatencyMs: number
  /** Probability that a segment the client sends is lost (and retransmitted after an RTO). */
  loss: number
}

/** One writer on one socket: back-to-back queries, one segment each way (the ACK rides on the next query). */
class Writer {
  segsOut = 3 // the handshake and the startup
  segsIn = 2
  totalRetrans = 0
  srttMs: number
  rttVarMs: number
  /** ms into the current query still to wait (a query spans ticks under latency). */
  private busyMs = 0
  constructor(readonly id: number, private readonly random: () => number, initialRttMs: number) {
    this.srttMs = initialRttMs
    this.rttVarMs = initialRttMs / 2
  }

  run(link: Link, ms: number, queriesPerTick = Infinity): void {
    let t = Math.min(this.busyMs, ms)
    this.busyMs -= t
    let queries = 0
    while (t < ms && queries < queriesPerTick) {
      const rtt = link.rttMs() + link.addedLatencyMs
      let took = rtt + 0.2 // + server time
      this.segsOut++
      let retransmitted = false
      while (this.random() < link.loss) {
        took += Math.max(200, this.srttMs + 4 * this.rttVarMs) // RTO (200 ms floor)
        this.segsOut++
        this.totalRetrans++
        retransmitted = true
      }
      if (!retransmitted) {
        // Karn: only a segment sent once gives an RTT sample. Linux: srtt += (m - srtt)/8, rttvar += (|d| - rttvar)/4.
        this.rttVarMs += (Math.abs(rtt - this.srttMs) - this.rttVarMs) / 4
        this.srttMs += (rtt - this.srttMs) / 8
      }
      this.segsIn++
      queries++
      t += took
    }
    if (t > ms) this.busyMs = t - ms
  }

  sample() {
    return tcpInfoSample({
      rttUs: Math.round(this.srttMs * 1000), rttVarUs: Math.round(this.rttVarMs * 1000),
      segsOut: this.segsOut, segsIn: this.segsIn, totalRetrans: this.totalRetrans,
      unacked: this.busyMs > 0 ? 1 : 0, lastAckRecvMs: 1,
    })
  }
}

/** A host with `writers` sockets, ticked every 250 ms through hostHealth. */
function host(opts: { writers: number; seed: number; link: Link; options?: HealthOptions; queriesPerTick?: number; idle?: boolean }) {
  const random = rng(opts.seed)
  const writers = Array.from({ length: opts.writers }, (_, i) => new Writer(i + 1, random, opts.link.rttMs()))
  let memory: HostHealthMemory | undefined
  let now = 1_000_000
  const transitions: HealthTransition[] = []
  const o = opts.options ?? HEALTH_DEFAULTS
  let last: ReturnType<typeof hostHealth> | undefined
  let idle = opts.idle ?? false
  return {
    link: opts.link,
    set idle(v: boolean) { idle = v },
    get now() { return now },
    transitions,
    get last() { return last! },
    /** Runs for `ms`; returns the transitions in that time. */
    run(ms: number): HealthTransition[] {
      const from = transitions.length
      for (let t = 0; t < ms; t += TICK_MS) {
        now += TICK_MS
        if (!idle) for (const w of writers) w.run(opts.link, TICK_MS, opts.queriesPerTick)
        last = hostHealth({ endpoint: A, sockets: writers.map((w) => ({ id: w.id, sample: w.sample() })), memory, now, options: o })
        memory = last.memory
        if (last.transition) transitions.push(last.transition)
      }
      return transitions.slice(from)
    },
  }
}

const loopback = (random = rng(7)): Link => ({ rttMs: () => 0.25 + random() * 0.1, addedLatencyMs: 0, loss: 0 })

describe('host health', () => {
  it("the issue's scenario: +100 ms and 18 % loss on one host -> degraded within 5 s with the evidence, cleared within 10 s of the end", () => {
    const h = host({ writers: 8, seed: 1, link: loopback() })
    assert.deepEqual(h.run(60_000), [], 'a minute of healthy traffic')
    assert.ok(Math.abs(h.last.health.baselineRttMs! - 0.3) < 0.05, `baseline ${h.last.health.baselineRttMs}`)

    const faultAt = h.now
    h.link.addedLatencyMs = 100
    h.link.loss = 0.18
    const down = h.run(5000)
    assert.equal(down.length, 1, 'one transition')
    const t = down[0]
    assert.equal(t.to, 'degraded')
    assert.ok(t.at - faultAt <= 5000, `degraded after ${t.at - faultAt} ms`)
    // The RTT is still climbing towards +100 ms (kernel srtt and the 1 s smoothing) when the loss, sustained, trips.
    assert.match(t.evidence, /^rtt 0\.3 → \d+ ms, 1\d % of segments retransmitted over \d+\.\d s$/)
    assert.ok(Number(/→ (\d+) ms/.exec(t.evidence)![1]) > 20.3, 'the RTT is past its limit too')
    assert.ok(t.at - t.firstEvidenceAt >= HEALTH_DEFAULTS.sustainMs)
    const m = h.last.health
    assert.equal(m.state, 'degraded')
    assert.ok(m.metrics.rttSeconds! > 0.09, `rtt ${m.metrics.rttSeconds} s`)
    assert.ok(m.metrics.retransmitRatio! > 0.1 && m.metrics.retransmitRatio! < 0.3, `ratio ${m.metrics.retransmitRatio}`)
    console.log(`    degraded after ${((t.at - faultAt) / 1000).toFixed(2)} s: ${t.evidence}`)

    assert.deepEqual(h.run(25_000), [], 'stays degraded while the fault lasts')
    const endAt = h.now
    h.link.addedLatencyMs = 0
    h.link.loss = 0
    const up = h.run(10_000)
    assert.equal(up.length, 1)
    assert.equal(up[0].to, 'healthy')
    assert.ok(up[0].at - endAt <= 10_000, `cleared after ${up[0].at - endAt} ms`)
    assert.match(up[0].evidence, /^rtt 1\d\d → 0\.\d ms, 0 % of segments retransmitted over \d+\.\d s; below 50 % of the thresholds for 5\.0 s$/)
    console.log(`    cleared after ${((up[0].at - endAt) / 1000).toFixed(2)} s: ${up[0].evidence}`)
    assert.ok(Math.abs(h.last.health.baselineRttMs! - 0.3) < 0.05, 'the fault did not move the baseline')
  })

  it('8 busy writers on a healthy host (RTT 0.1-2 ms, occasional single retransmits) are never degraded over 10 minutes', () => {
    for (const seed of [11, 12, 13]) {
      const random = rng(seed * 101)
      const link: Link = { rttMs: () => 0.1 + random() * 1.9, addedLatencyMs: 0, loss: 0.0005 }
      const h = host({ writers: 8, seed, link, queriesPerTick: 40 })
      let pending = 0
      for (let i = 0; i < 600; i++) {
        h.run(1000)
        if (h.last.health.pendingSince !== null) pending++
      }
      assert.deepEqual(h.transitions, [], `seed ${seed}`)
      assert.equal(pending, 0, `seed ${seed}: never even pending`)
      assert.ok(h.last.health.rttMs! < 3 && h.last.health.retransmitRatio! < 0.01, `seed ${seed}: ${JSON.stringify(h.last.health.metrics)}`)
    }
  })

  it('idle sockets (no segments sent) never flap, whatever their last srtt says', () => {
    const random = rng(5)
    let memory: HostHealthMemory | undefined
    for (let i = 0; i < 2400; i++) {
      // Each idle socket reports the srtt of its last exchange, which can be anything, e.g. the handshake's.
      const sockets = [1, 2, 3].map((id) => ({ id, sample: tcpInfoSample({ rttUs: Math.round(random() * 200_000), segsOut: 10 * id, segsIn: 9 * id, totalRetrans: id, lastAckRecvMs: 30_000 + i * 250 }) }))
      const out = hostHealth({ endpoint: A, sockets, memory, now: 1_000_000 + i * 250, options: HEALTH_DEFAULTS })
      memory = out.memory
      assert.equal(out.transition, null)
      assert.equal(out.health.state, 'healthy')
      assert.equal(out.health.activeSockets, 0)
      assert.equal(out.health.rttMs, null, 'no exchange, no RTT')
      assert.equal(out.health.retransmitRatio, null)
    }
  })

  it('a host that goes quiet while degraded keeps its state; a quiet healthy host with a stale high srtt stays healthy', () => {
    const h = host({ writers: 4, seed: 3, link: { ...loopback(), addedLatencyMs: 0 } })
    h.run(30_000)
    h.link.addedLatencyMs = 150
    assert.equal(h.run(5000).length, 1)
    h.link.addedLatencyMs = 0
    h.idle = true
    assert.deepEqual(h.run(60_000), [], 'no traffic, no evidence of recovery')
    assert.equal(h.last.health.state, 'degraded')
    h.idle = false
    assert.equal(h.run(10_000)[0]?.to, 'healthy', 'traffic again: recovered')
    const quiet = host({ writers: 4, seed: 3, link: loopback(), idle: true })
    assert.deepEqual(quiet.run(60_000), [])
  })

  it('a socket seen for the first time, or whose counters went back (a reused id), only sets the reference', () => {
    const o = HEALTH_DEFAULTS
    const s = (segsOut: number, totalRetrans: number) => [{ id: 1, sample: tcpInfoSample({ segsOut, segsIn: segsOut, totalRetrans, rttUs: 300 }) }]
    const first = hostHealth({ endpoint: A, sockets: s(1000, 900), memory: undefined, now: 0, options: o })
    assert.equal(first.health.retransmitRatio, null, 'a life of retransmissions before we looked is not this tick\'s')
    const back = hostHealth({ endpoint: A, sockets: s(10, 0), memory: first.memory, now: 250, options: o })
    assert.equal(back.health.ratioSegments, 0)
    const on = hostHealth({ endpoint: A, sockets: s(110, 1), memory: back.memory, now: 500, options: o })
    assert.equal(on.health.retransmitRatio, 0.01)
    assert.equal(on.health.ratioSegments, 50)
  })

  it('queued bytes, unacked segments and keepalive probes are reported, from TCP_INFO and /proc samples', () => {
    const sockets = [
      { id: 1, sample: tcpInfoSample({ notsentBytes: 4096, unacked: 3, segsOut: 5 }) },
      { id: 2, sample: tcpInfoSample({ probes: 2, segsOut: 5 }) },
      { id: 3, sample: { ...tcpInfoSample(), source: 'proc' as const, txQueue: 1000, segsOut: null, totalRetrans: null } },
      { id: 4, sample: undefined },
    ]
    const out = hostHealth({ endpoint: A, sockets, memory: undefined, now: 0, options: HEALTH_DEFAULTS })
    assert.equal(out.health.queuedBytes, 5096)
    assert.equal(out.health.metrics.queuedBytes, 5096)
    assert.equal(out.health.unackedSegments, 3)
    assert.equal(out.health.keepaliveProbes, 2)
    assert.equal(out.health.sockets, 4)
  })

  it('assessHealth groups by endpoint: a fault on one host degrades that host only', () => {
    const rand = rng(9)
    const ws = [1, 2, 3, 4, 5, 6].map((id) => new Writer(id, rand, 0.3))
    const links: Record<string, Link> = { [A]: loopback(rng(1)), [B]: loopback(rng(2)) }
    const ep = (w: Writer) => (w.id <= 3 ? A : B)
    let memory = new Map<string, HostHealthMemory>()
    const seen: HealthTransition[] = []
    for (let i = 0; i < 240; i++) {
      if (i === 120) links[B] = { ...links[B], addedLatencyMs: 100, loss: 0.18 }
      for (const w of ws) w.run(links[ep(w)], TICK_MS)
      const out = assessHealth({ now: i * TICK_MS, sockets: ws.map((w) => ({ id: w.id, endpoint: ep(w), sample: w.sample() })), memory, options: HEALTH_DEFAULTS })
      memory = out.memory
      seen.push(...out.transitions)
      if (i === 239) assert.deepEqual(out.hosts.map((h) => [h.endpoint, h.state]), [[A, 'healthy'], [B, 'degraded']])
    }
    assert.deepEqual(seen.map((t) => [t.endpoint, t.to]), [[B, 'degraded']])
  })
})

describe('host health thresholds: the defaults table is what the rule uses', () => {
  it('every default comes from the table, with a unit and a reason', () => {
    for (const [k, d] of Object.entries(HEALTH_DEFAULTS_TABLE)) {
      assert.equal(HEALTH_DEFAULTS[k as keyof HealthOptions], d.value, k)
      assert.ok(d.why.length > 40 && d.unit.length > 0, k)
    }
    assert.deepEqual(Object.keys(HEALTH_DEFAULTS).sort(), Object.keys(HEALTH_DEFAULTS_TABLE).sort())
    assert.equal(rttLimitMs(0.3, HEALTH_DEFAULTS), 20.3, 'LAN: the margin decides')
    assert.equal(rttLimitMs(50, HEALTH_DEFAULTS), 200, 'WAN: the factor decides')
    assert.equal(rttLimitMs(0.3, HEALTH_DEFAULTS, HEALTH_DEFAULTS.recoverFraction), 10.3)
  })

  /** A steady host: 2 sockets, the same RTT and segment counts each tick, straight through the builder. */
  function steady(o: HealthOptions) {
    let memory: HostHealthMemory | undefined
    let now = 0
    const c = { segs: 0, retrans: 0 }
    const transitions: HealthTransition[] = []
    return {
      get memory() { return memory! },
      transitions,
      run(ms: number, rttMs: number, segsPerTick = 200, retransPerTick = 0) {
        for (let t = 0; t < ms; t += TICK_MS) {
          now += TICK_MS
          c.segs += segsPerTick / 2
          c.retrans += retransPerTick / 2
          const sample = tcpInfoSample({ rttUs: Math.round(rttMs * 1000), segsOut: Math.round(c.segs), segsIn: Math.round(c.segs), totalRetrans: Math.round(c.retrans) })
          const out = hostHealth({ endpoint: A, sockets: [{ id: 1, sample }, { id: 2, sample }], memory, now, options: o })
          memory = out.memory
          if (out.transition) transitions.push(out.transition)
        }
        return memory!.state
      },
    }
  }

  it('RTT: the margin on a fast link, the factor on a slow one', () => {
    const o = HEALTH_DEFAULTS
    for (const [baseline, limit] of [[0.3, 0.3 + o.rttMarginMs], [50, 50 * o.rttFactor]]) {
      const below = steady(o)
      below.run(30_000, baseline)
      assert.equal(below.run(20_000, limit * 0.95), 'healthy', `${baseline} ms baseline, ${limit * 0.95} ms`)
      const above = steady(o)
      above.run(30_000, baseline)
      assert.equal(above.run(20_000, limit * 1.05), 'degraded', `${baseline} ms baseline, ${limit * 1.05} ms`)
    }
    const wider = steady({ ...HEALTH_DEFAULTS, rttMarginMs: 50 })
    wider.run(30_000, 0.3)
    assert.equal(wider.run(20_000, 0.3 + 20 * 1.05), 'healthy', 'the option, not a constant, is used')
  })

  it('retransmissions: the ratio threshold, over at least minSegments', () => {
    const o = HEALTH_DEFAULTS
    const pct = o.retransmitRatio * 100
    const below = steady(o)
    assert.equal(below.run(30_000, 0.3, 200, 2 * (pct - 1)), 'healthy')
    const above = steady(o)
    assert.equal(above.run(30_000, 0.3, 200, 2 * (pct + 1)), 'degraded')
    assert.match(above.transitions[0].evidence, /^rtt 0\.3 → 0\.3 ms, 6 % of segments retransmitted over 0\.3 s$/, 'one tick holds the 50 segments')
    // Every segment a retransmission, but fewer than minSegments within windowMs: not judged.
    // 1 segment per tick on the host (both sockets together): 40 in windowMs, every one a retransmission.
    const sparse = steady(o)
    assert.ok((o.windowMs / TICK_MS) * 1 < o.minSegments)
    assert.equal(sparse.run(60_000, 0.3, 1, 1), 'healthy')
    const s = hostHealth({ endpoint: A, sockets: [], memory: sparse.memory, now: 60_000, options: o })
    assert.equal(s.health.retransmitRatio, null)
    assert.equal(s.health.ratioSegments, 40)
    assert.equal(steady({ ...HEALTH_DEFAULTS, minSegments: 20 }).run(60_000, 0.3, 1, 1), 'degraded', 'the option, not a constant, is used')
  })

  it('sustainMs to degrade, recoverMs below recoverFraction of the thresholds to recover', () => {
    const o = HEALTH_DEFAULTS
    const h = steady(o)
    h.run(30_000, 0.3)
    h.run(o.sustainMs - TICK_MS, 100)
    assert.equal(h.memory.state, 'healthy', 'a blip shorter than sustainMs')
    h.run(1000, 0.3)
    h.run(o.sustainMs + TICK_MS, 100)
    assert.equal(h.memory.state, 'degraded')
    const down = h.transitions[0]
    assert.equal(down.at - down.firstEvidenceAt, o.sustainMs)
    // Between the recovery limit (10.3 ms) and the degradation limit (20.3 ms): still degraded.
    h.run(30_000, 15)
    assert.equal(h.memory.state, 'degraded', 'hysteresis')
    h.run(o.recoverMs + 5000, 0.3)
    assert.equal(h.memory.state, 'healthy')
    const up = h.transitions[1]
    assert.equal(up.at - up.firstEvidenceAt, o.recoverMs)
    const quick = steady({ ...HEALTH_DEFAULTS, sustainMs: 500 })
    quick.run(30_000, 0.3)
    assert.equal(quick.run(1500, 100), 'degraded', 'the option, not a constant, is used')
  })
})
