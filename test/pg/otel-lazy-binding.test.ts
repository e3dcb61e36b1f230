/**
 * Lazy binding to the global MeterProvider: a pool created before the OpenTelemetry SDK registers (the
 * usual order with hoisted ESM imports) starts reporting once the SDK is there, and a process with no SDK
 * keeps the no-op fast path (no per-checkout wrapper, nothing recorded).
 */
import assert from 'node:assert/strict'
import { afterEach, describe, it } from 'node:test'
import { metrics } from '@opentelemetry/api'
import { Pool } from '../../src/index'
import { PoolMetrics, type PoolView } from '../../src/telemetry/metrics'
import { ATTR_POOL_NAME, ATTR_STATE, GUARD, SEMCONV } from '../../src/telemetry/semconv'
import { until, useCluster } from '../helpers'
import { meterProvider } from '../metrics'

const cluster = useCluster({ primaryHost: '127.0.7.2' })

afterEach(() => metrics.disable())

const view = (used: number): PoolView => ({
  idle: 1, used, max: 7, idleMin: 0, idleMax: 7, pending: 0, sockets: [], foreignSockets: 0, regions: 0, writableHosts: 0, health: [], replication: [],
})

describe('metrics bind lazily to a global MeterProvider registered after the pool', () => {
  it('PoolMetrics.maybeBind(): false while the global is the no-op, true (and reporting) once an SDK registers', async () => {
    const m = new PoolMetrics('lazy-unit', 'all', null, () => view(3))
    assert.equal(m.active, false, 'no SDK yet')
    let bound = 0
    m.onBind(() => bound++)
    // The unchanged case is the one the guard's tick hits every second: one global read, one comparison.
    const t = process.hrtime.bigint()
    for (let n = 0; n < 1_000_000; n++) m.maybeBind()
    console.log(`# maybeBind() with nothing changed: ${(Number(process.hrtime.bigint() - t) / 1_000_000).toFixed(1)} ns per call`)
    assert.equal(m.maybeBind(), false)
    assert.equal(bound, 0)

    const otel = meterProvider()
    assert.ok(metrics.setGlobalMeterProvider(otel.provider), 'registered the global MeterProvider')
    assert.equal(m.maybeBind(), true)
    assert.equal(m.active, true)
    assert.equal(bound, 1, 'onBind listeners run once, when the pool starts reporting')
    assert.equal(m.maybeBind(), true)
    assert.equal(bound, 1)
    const c = await otel.collect()
    assert.equal(c.value(SEMCONV.connectionCount.name, { [ATTR_POOL_NAME]: 'lazy-unit', [ATTR_STATE]: 'used' }), 3)
    assert.equal(c.value(SEMCONV.max.name, { [ATTR_POOL_NAME]: 'lazy-unit' }), 7)
    m.close()
    await otel.provider.shutdown()
  })

  it("an explicit no-op meterProvider or metrics 'off' never binds, even after an SDK registers", async () => {
    const off = new PoolMetrics('lazy-off', 'off', null, () => view(1))
    const explicit = new PoolMetrics('lazy-explicit', 'all', metrics.getMeterProvider(), () => view(1))
    const otel = meterProvider()
    metrics.setGlobalMeterProvider(otel.provider)
    assert.equal(off.maybeBind(), false)
    assert.equal(explicit.maybeBind(), false)
    const c = await otel.collect()
    assert.deepEqual(c.metrics.map((x) => x.descriptor.name), [])
    await otel.provider.shutdown()
  })

  it('a real pool created before the SDK: no-op fast path first, then its counts after the guard’s next pass', async () => {
    const early = new Pool({ ...cluster.get().config, max: 4, guard: { poolName: 'early' } })
    const held = await Promise.all([early.connect(), early.connect()])
    held[1].release()

    const otel = meterProvider()
    metrics.setGlobalMeterProvider(otel.provider)
    assert.equal((await otel.collect()).metrics.length, 0, 'nothing before the pool re-checks')
    // The guard's pass (about once a second at rest) calls maybeBind(); wait for the next one.
    const passes = early.guard.stats().passes
    await until(() => early.guard.stats().passes > passes, 'a guard pass after the SDK registered')
    const c = await otel.collect()
    assert.equal(c.value(SEMCONV.connectionCount.name, { [ATTR_POOL_NAME]: 'early', [ATTR_STATE]: 'used' }), 1)
    assert.equal(c.value(SEMCONV.connectionCount.name, { [ATTR_POOL_NAME]: 'early', [ATTR_STATE]: 'idle' }), 1)
    assert.equal(c.value(SEMCONV.max.name, { [ATTR_POOL_NAME]: 'early' }), 4)
    assert.ok(c.value(GUARD.passDuration.name, { [ATTR_POOL_NAME]: 'early' })! >= 1, 'the pass that bound is recorded')

    // A pool created after the SDK binds at construction, with the per-checkout hook on.
    const late = new Pool({ ...cluster.get().config, max: 2, guard: { poolName: 'late' } })
    await late.query('SELECT 1')
    const c2 = await otel.collect()
    assert.equal(c2.value(SEMCONV.waitTime.name, { [ATTR_POOL_NAME]: 'late' }), 1)
    assert.equal(c2.value(SEMCONV.max.name, { [ATTR_POOL_NAME]: 'late' }), 2)

    held[0].release()
    await Promise.all([early.end(), late.end()])
    await otel.provider.shutdown()
  })
})
