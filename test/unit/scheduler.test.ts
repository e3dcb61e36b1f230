/**
 * The scheduler without a server or a kernel: a FakeKernel answers TCP_INFO and /proc, ticks are driven
 * with explicit times, and the evictor acts on recorded fakes. Cadence (idle vs in flight), the /proc
 * budget, the fallback detector and the path from a kernel sample to an eviction are asserted exactly.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Socket } from 'node:net'
import type { Client } from 'pg'
import { IDLE_EVERY_MS, PROC_COST_MULTIPLE } from '../../src/guard/cadence'
import { Evictor } from '../../src/guard/evictor'
import { HostProbes } from '../../src/guard/host-probes'
import { type ConnRecord, Registry } from '../../src/guard/registry'
import { Scheduler } from '../../src/guard/scheduler'
import { FakeKernel } from '../../src/kernel/fake'
import type { TcpRow } from '../../src/kernel/proc-net-tcp'
import type { KernelSample } from '../../src/kernel/sample'
import { TcpState } from '../../src/kernel/tcp-info'
import { GUARD_DEFAULTS, type ResolvedGuardOptions } from '../../src/options'
import { Regions } from '../../src/topology/regions'
import { Topology } from '../../src/topology/topology'

const quiet = (o: Partial<KernelSample> = {}): KernelSample => ({
  source: 'tcp_info', state: TcpState.ESTABLISHED, outstanding: false, retransmits: 0, probes: 0, rtoMs: 204, backoff: 0,
  msSinceAck: 5, msSinceDataRecv: 5, msSinceDataSent: 5, txQueue: null, bytesReceived: 100n, bytesAcked: 100n, totalRetrans: 0, ...o,
})

function bed(options: Partial<ResolvedGuardOptions> = {}) {
  const o = { ...GUARD_DEFAULTS, ...options }
  const kernel = new FakeKernel()
  const registry = new Registry({ transitioned: () => {}, connectDeadline: () => {} }, () => 0)
  const topology = new Topology({
    hosts: [{ host: '10.0.0.1', port: 5432 }], targetSessionAttrs: 'any', loadBalanceHosts: 'disable', regions: new Regions(),
    lookup: async () => [], topologyIntervalMs: 0, dnsIntervalMs: 0, timeoutMs: 1000, configFor: () => ({}),
  })
  const acted: string[] = []
  const evictor = new Evictor(registry, {
    isIdle: (c) => !(c as unknown as { _activeQuery: unknown })._activeQuery,
    removeIdle: () => acted.push('remove'), destroy: () => acted.push('destroy'), retire: () => acted.push('retire'), failConnect: () => acted.push('fail'), refuse: () => acted.push('refuse'),
  }, 'destroy', { verdict: () => {}, evicted: () => {} }, () => {})
  const probes = new HostProbes({}, () => 1000, () => {}, () => {}, async () => ({ endpoint: '', alive: true, startedAt: 0, finishedAt: 0 }))
  const passes: boolean[] = []
  const health: string[] = []
  const scheduler = new Scheduler({
    registry, kernel, options: o, topology, singleRegion: false, evictor, hostProbes: probes,
    onPass: (r) => passes.push(r.crossCheck),
    onHealth: (t) => health.push(`${t.endpoint} ${t.from} -> ${t.to}: ${t.evidence}`),
  })
  let nextFd = 10
  const add = (inFlight = false): ConnRecord => {
    const client = { host: '10.0.0.1', port: 5432, _activeQuery: inFlight ? {} : null } as unknown as Client
    const rec = registry.add(client, '10.0.0.1', 5432, null, 0)
    const fd = nextFd++
    const socket = { _handle: { fd }, remoteAddress: '10.0.0.1', remotePort: 5432, localAddress: '10.0.0.9', localPort: 40000 + fd, remoteFamily: 'IPv4' } as unknown as Socket
    registry.attachSocket(rec, { socket, transport: 'tcp', fd, inode: 1000 + fd, region: null, socketOptions: null })
    registry.transition(rec, inFlight ? 'in-use' : 'idle', 0)
    kernel.samples.set(fd, quiet())
    kernel.inodes.set(fd, 1000 + fd)
    return rec
  }
  const row = (rec: ConnRecord, o: Partial<TcpRow> = {}): TcpRow => ({
    family: 4, localAddress: '10.0.0.9', localPort: rec.localPort!, remoteAddress: '10.0.0.1', remotePort: 5432, state: TcpState.ESTABLISHED,
    txQueue: 0, rxQueue: 0, timer: 0, timerInMs: 0, retransmits: 0, uid: 0, probes: 0, inode: rec.inode!, ...o,
  })
  return { o, kernel, registry, scheduler, acted, passes, health, add, row, t0: Date.now() }
}

describe('scheduler cadence', () => {
  it('an idle, quiet pool is looked at once a second; a query in flight brings back every tick', () => {
    const b = bed()
    const rec = b.add()
    for (let t = 0; t <= 3000; t += 250) b.scheduler.tick(b.t0 + t)
    assert.equal(b.passes.length, 4, `passes at 0, 1, 2, 3 s (of 13 ticks): ${b.passes.length}`)
    ;(rec.client as unknown as { _activeQuery: unknown })._activeQuery = {}
    b.passes.length = 0
    for (let t = 3250; t <= 4250; t += 250) b.scheduler.tick(b.t0 + t)
    assert.equal(b.passes.length, 5, 'every tick while a query is in flight')
  })

  it('anything unusual (a keepalive probe out) keeps the full cadence', () => {
    const b = bed()
    const rec = b.add()
    b.kernel.samples.set(rec.fd!, quiet({ probes: 1, msSinceAck: 6000 }))
    for (let t = 0; t <= 1000; t += 250) b.scheduler.tick(b.t0 + t)
    assert.equal(b.passes.length, 5)
    assert.equal(IDLE_EVERY_MS, 1000)
  })
})

describe('/proc budget', () => {
  it('a read that took X ms is not repeated for X / budget ms, even when the interval says so', () => {
    const b = bed({ procScanIntervalMs: 1000 })
    b.add(true)
    b.kernel.tableCostMs = 30 // a busy host: 30 ms a read
    for (let t = 1000; t <= 60_000; t += 250) b.scheduler.tick(b.t0 + t)
    assert.equal(b.kernel.tableReads, 1, `one read in a minute at 30 ms a read (budget ${(100 / PROC_COST_MULTIPLE).toFixed(2)} % of a core)`)
    b.scheduler.tick(b.t0 + 1000 + 30 * PROC_COST_MULTIPLE)
    assert.equal(b.kernel.tableReads, 2, 'and the next one once the budget allows')
  })

  it('a cheap read follows procScanIntervalMs; guard.check({ crossCheck }) reads at once', () => {
    const b = bed({ procScanIntervalMs: 5000 })
    b.add(true)
    for (let t = 250; t <= 20_000; t += 250) b.scheduler.tick(b.t0 + t)
    assert.equal(b.kernel.tableReads, 4)
    b.scheduler.tick(b.t0 + 20_100, { pass: true, crossCheck: true })
    assert.equal(b.kernel.tableReads, 5)
  })

  it('without TCP_INFO, /proc rows are the detector: read every second while a query is in flight', () => {
    const b = bed()
    b.kernel.unavailable = 'test: no FFI'
    const rec = b.add(true)
    b.kernel.rows = [b.row(rec)]
    const s = new Scheduler({ ...(b.scheduler as unknown as { d: ConstructorParameters<typeof Scheduler>[0] }).d })
    const t0 = Date.now() + 1 // this scheduler's first cross-check is due a full interval after it was built
    for (let t = 250; t <= 5000; t += 250) s.tick(t0 + t)
    assert.equal(b.kernel.tableReads, 5)
    assert.equal(b.kernel.sampleCalls, 0, 'no TCP_INFO calls')
    assert.equal(rec.kernel?.source, 'proc')
  })
})

describe('from a kernel sample to the evictor', () => {
  it('CLOSE_WAIT for graceMs: the idle client is removed as peer-closed, once', () => {
    const b = bed()
    const rec = b.add()
    b.kernel.samples.set(rec.fd!, quiet({ state: TcpState.CLOSE_WAIT }))
    b.scheduler.tick(b.t0)
    assert.deepEqual(b.acted, [], 'not before graceMs')
    b.scheduler.tick(b.t0 + b.o.graceMs)
    b.scheduler.tick(b.t0 + b.o.graceMs + 250)
    assert.deepEqual(b.acted, ['remove'])
    assert.equal(rec.verdict?.kind, 'peer-closed')
  })

  it('an fd that now leads to another socket is vanished after graceMs (the /proc cross-check sees it)', () => {
    const b = bed()
    const rec = b.add(true)
    b.kernel.rows = [b.row(rec)]
    b.kernel.inodes.set(rec.fd!, 99) // the fd was closed and reused
    b.scheduler.tick(b.t0 + 100, { pass: true, crossCheck: true })
    b.scheduler.tick(b.t0 + 100 + b.o.graceMs)
    assert.deepEqual(b.acted, ['destroy'])
    assert.match(rec.verdict!.evidence, /fd \d+ now belongs to another socket/)
  })
})

describe('host health from the same samples', () => {
  it('a host retransmitting a fifth of its segments turns degraded (a state, no eviction), then healthy again', () => {
    const b = bed()
    const rec = b.add(true)
    let segs = 1000
    let retrans = 0
    const tick = (t: number, lossy: boolean): void => {
      segs += 100
      if (lossy) retrans += 20
      b.kernel.samples.set(rec.fd!, quiet({ rttMs: 0.4, segsOut: segs, segsIn: segs, totalRetrans: retrans }))
      b.scheduler.tick(b.t0 + t)
    }
    let t = 0
    for (; t <= 1000; t += 250) tick(t, false)
    for (; t <= 5000; t += 250) tick(t, true)
    assert.equal(b.health.length, 1, b.health.join('; '))
    assert.match(b.health[0], /^10\.0\.0\.1:5432 healthy -> degraded: .*% of segments retransmitted/)
    assert.equal(b.scheduler.health[0].state, 'degraded')
    for (; t <= 20_000; t += 250) tick(t, false)
    assert.equal(b.health.length, 2, b.health.join('; '))
    assert.match(b.health[1], /degraded -> healthy/)
    assert.deepEqual(b.acted, [], 'never evicted for being slow or lossy')
  })
})
