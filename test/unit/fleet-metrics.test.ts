/**
 * The fleet view's telemetry without a server (issue 21): the client's zone (option, or OTEL_RESOURCE_ATTRIBUTES
 * as the SDK reads it) rides on every pg_pool_guard.* point and on no db.client.connection.* point; the
 * per-host judgement and writable timeline come out as fleet-alerts.yml expects, and an ended pool leaves no
 * judgement behind. Read through an in-memory metric reader. Also the demo's text matrix.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { renderMatrix } from '../../src/cli/fleet-demo'
import { resolveGuardOptions } from '../../src/options'
import { ConfigError } from '../../src/errors'
import { PoolMetrics, type PoolView } from '../../src/telemetry/metrics'
import { clientZone, parseResourceAttributes } from '../../src/telemetry/resource'
import { ATTR_CLIENT_ZONE, ATTR_HOST_STATUS, ATTR_POOL_NAME, FLEET, GUARD, SEMCONV } from '../../src/telemetry/semconv'
import { meterProvider } from '../metrics'

const view = (over: Partial<PoolView> = {}): PoolView => ({
  idle: 1, used: 2, max: 8, idleMin: 0, idleMax: 8, pending: 0, sockets: [], foreignSockets: 0, regions: 1, writableHosts: 1, health: [], replication: [],
  hostStatus: [{ address: '198.18.2.1', port: 5432, status: 'down' }, { address: '198.18.2.2', port: 5432, status: 'up' }],
  writableTimelines: [{ address: '198.18.2.1', port: 5432, timeline: 3 }, { address: '198.18.2.2', port: 5432, timeline: 0 }],
  ...over,
})

describe('the client zone', () => {
  it('OTEL_RESOURCE_ATTRIBUTES as the SDK reads it: pairs, percent-decoding, malformed pairs skipped', () => {
    const attrs = parseResourceAttributes('service.instance.id=app%2D1, cloud.availability_zone = eu-west-1a ,broken,=x,bad=%E0%A4%A,cloud.region=eu-west-1')
    assert.deepEqual([...attrs], [['service.instance.id', 'app-1'], ['cloud.availability_zone', 'eu-west-1a'], ['cloud.region', 'eu-west-1']])
    assert.deepEqual([...parseResourceAttributes(undefined)], [])
  })

  it('the option wins; else the availability zone, else the region; else none', () => {
    assert.equal(clientZone('zone-x', { OTEL_RESOURCE_ATTRIBUTES: 'cloud.availability_zone=a' }), 'zone-x')
    assert.equal(clientZone(null, { OTEL_RESOURCE_ATTRIBUTES: 'cloud.region=r1,cloud.availability_zone=a' }), 'a')
    assert.equal(clientZone(null, { OTEL_RESOURCE_ATTRIBUTES: 'cloud.region=r1' }), 'r1')
    assert.equal(clientZone(null, {}), null)
  })

  it('guard.zone: a non-empty string of at most 128 characters, default null', () => {
    assert.equal(resolveGuardOptions({}).zone, null)
    assert.equal(resolveGuardOptions({ zone: 'eu-west-1a' }).zone, 'eu-west-1a')
    for (const bad of ['', 'z'.repeat(129), 7]) assert.throws(() => resolveGuardOptions({ zone: bad as string }), ConfigError)
  })
})

describe('fleet metrics', () => {
  it('the zone is on every pg_pool_guard.* point and on no db.client.connection.* point', async () => {
    const otel = meterProvider()
    const m = new PoolMetrics('orders', 'all', otel.provider, () => view(), 'zone-a')
    m.waitTime(3)
    m.useTime(2)
    m.verdict('host-dead')
    m.evicted('host-dead', true, 1200)
    m.pass(0.1, 2, 0)
    m.probe(false)
    const c = await otel.collect()
    for (const metric of c.metrics) {
      const guard = metric.descriptor.name.startsWith('pg_pool_guard.')
      for (const p of metric.dataPoints as { attributes: Record<string, unknown> }[]) {
        assert.equal(p.attributes[ATTR_CLIENT_ZONE], guard ? 'zone-a' : undefined, `${metric.descriptor.name} ${JSON.stringify(p.attributes)}`)
      }
    }
    // The per-checkout histograms keep the pool name alone: the same attribute set as before the fleet view.
    assert.deepEqual(Object.keys((c.metric(SEMCONV.waitTime.name).dataPoints[0] as { attributes: object }).attributes), [ATTR_POOL_NAME])
    assert.equal(c.value(GUARD.evictions.name, { [ATTR_CLIENT_ZONE]: 'zone-a', 'pg_pool_guard.reason': 'host-dead' }), 1)
    m.close()
    await otel.provider.shutdown()
  })

  it('without a zone anywhere, no zone attribute at all (existing series keep their identity)', async () => {
    const saved = process.env.OTEL_RESOURCE_ATTRIBUTES
    delete process.env.OTEL_RESOURCE_ATTRIBUTES
    try {
      const otel = meterProvider()
      const m = new PoolMetrics('orders-nozone', 'all', otel.provider, () => view())
      const c = await otel.collect()
      for (const metric of c.metrics) for (const p of metric.dataPoints as { attributes: Record<string, unknown> }[]) assert.ok(!(ATTR_CLIENT_ZONE in p.attributes), metric.descriptor.name)
      m.close()
      await otel.provider.shutdown()
    } finally {
      if (saved !== undefined) process.env.OTEL_RESOURCE_ATTRIBUTES = saved
    }
  })

  it('host status: one point per state, 1 for the current one; writable timeline per host, 0 where not writing', async () => {
    const otel = meterProvider()
    const m = new PoolMetrics('orders-status', 'all', otel.provider, () => view(), 'a')
    const c = await otel.collect()
    const status = (host: string, s: string): number | undefined => c.value(FLEET.hostStatus.name, { 'server.address': host, [ATTR_HOST_STATUS]: s })
    assert.deepEqual(['up', 'degraded', 'down'].map((s) => status('198.18.2.1', s)), [0, 0, 1])
    assert.deepEqual(['up', 'degraded', 'down'].map((s) => status('198.18.2.2', s)), [1, 0, 0])
    assert.equal(c.value(FLEET.writableTimeline.name, { 'server.address': '198.18.2.1' }), 3)
    assert.equal(c.value(FLEET.writableTimeline.name, { 'server.address': '198.18.2.2' }), 0)
    assert.equal(FLEET.hostStatus.unit, '{host}')
    m.close()
    await otel.provider.shutdown()
  })

  it('sockets and endpoints that went away are reported 0, not kept at their last count and state', async () => {
    // Seen on a fleet: a zone cut off from the primary kept exporting 4 ESTABLISHED sockets to it, and its
    // health "degraded", long after every socket was evicted — the SDK re-exports an unobserved attribute set.
    const otel = meterProvider()
    const socket = { tcpState: 'ESTABLISHED', address: '198.18.2.1', port: 5432, region: null, role: 'primary' }
    const health = { address: '198.18.2.1', port: 5432, state: 'degraded' as const, rttSeconds: 0.002, retransmitRatio: 0.1, queuedBytes: 512 }
    let current = view({ sockets: [socket, socket, socket, socket], health: [health] })
    const m = new PoolMetrics('orders-vanish', 'all', otel.provider, () => current, 'a')
    let c = await otel.collect()
    const at = { [ATTR_POOL_NAME]: 'orders-vanish', 'server.address': '198.18.2.1' }
    assert.equal(c.value(GUARD.sockets.name, { ...at, 'pg_pool_guard.tcp.state': 'ESTABLISHED' }), 4)
    assert.equal(c.value('pg_pool_guard.host.health', { ...at, 'pg_pool_guard.host.state': 'degraded' }), 1)
    current = view({ sockets: [], health: [] })
    c = await otel.collect()
    assert.equal(c.value(GUARD.sockets.name, { ...at, 'pg_pool_guard.tcp.state': 'ESTABLISHED' }), 0)
    assert.equal(c.value('pg_pool_guard.host.health', { ...at, 'pg_pool_guard.host.state': 'degraded' }), 0)
    assert.equal(c.value('pg_pool_guard.host.queued_bytes', at), 0)
    m.close()
    await otel.provider.shutdown()
  })

  it('an ended pool reports no current state and no timeline (the SDK would keep the last values otherwise)', async () => {
    const otel = meterProvider()
    const m = new PoolMetrics('orders-ended', 'all', otel.provider, () => view(), 'a')
    await otel.collect()
    m.close()
    const c = await otel.collect()
    const points = c.metric(FLEET.hostStatus.name).dataPoints as { attributes: Record<string, unknown>; value: number }[]
    assert.equal(points.filter((p) => p.attributes[ATTR_POOL_NAME] === 'orders-ended').reduce((s, p) => s + p.value, 0), 0, 'every state 0')
    assert.equal(c.sum(FLEET.writableTimeline.name, { [ATTR_POOL_NAME]: 'orders-ended' }), 0)
    await otel.provider.shutdown()
  })
})

describe('demo --fleet matrix', () => {
  it('one line per host: a glyph per instance, the count judging it bad, the fleet alerts about it', () => {
    const s = (instance: string, zone: string, host: string, status: 'up' | 'degraded' | 'down') => ({ instance, zone, host, status })
    const lines = renderMatrix(
      [s('a-0', 'a', '198.18.2.1:5432', 'down'), s('a-1', 'a', '198.18.2.1:5432', 'down'), s('b-0', 'b', '198.18.2.1:5432', 'up'), s('b-1', 'b', '198.18.2.1:5432', 'degraded'),
        s('a-0', 'a', '198.18.2.2:5432', 'up'), s('b-0', 'b', '198.18.2.2:5432', 'up')],
      ['a', 'b'], { '198.18.2.1:5432': 'primary' },
      [{ labels: { alertname: 'PgPoolGuardFleetZonePartition', pg_pool_guard_client_zone: 'a', server_address: '198.18.2.1' }, annotations: {}, state: 'firing', activeAt: '', value: '1' },
        { labels: { alertname: 'PgPoolGuardEvictionBurst', instance: 'a-0' }, annotations: {}, state: 'firing', activeAt: '', value: '3' }]
    )
    assert.deepEqual(lines, [
      '198.18.2.1:5432 primary   | a ██ 2/2    | b ·▒ 1/2    | ZonePartition(zone a) FIRING',
      '198.18.2.2:5432           | a · 0/1     | b · 0/1     | ',
    ])
  })
})
