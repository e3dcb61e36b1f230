/**
 * OpenTelemetry metrics, collected with an in-memory reader after real events on real PostgreSQL:
 * names, units, instrument kinds and attributes as the semantic conventions define them, and values that
 * are right per pool with two pools in one process.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type EvictionEvent, Pool } from '../../src/index'
import { ATTR_POOL_NAME, ATTR_STATE, FLEET, GUARD, SEMCONV } from '../../src/telemetry/semconv'
import { events, until, useCluster } from '../helpers'
import { DataPointType, meterProvider } from '../metrics'

const cluster = useCluster({ primaryHost: '127.0.7.1' })

describe('OpenTelemetry metrics', () => {
  it('db.client.connection.* per pool: two pools holding 3 and 1 clients report 3 and 1 used', async () => {
    const otel = meterProvider()
    const c = cluster.get()
    const a = new Pool({ ...c.config, max: 5, guard: { meterProvider: otel.provider, poolName: 'orders' } })
    const b = new Pool({ ...c.config, max: 2, guard: { meterProvider: otel.provider } })
    const heldA = await Promise.all([a.connect(), a.connect(), a.connect(), a.connect()])
    heldA[3].release()
    const heldB = await b.connect()
    const m = await otel.collect()

    const count = m.metric(SEMCONV.connectionCount.name)
    assert.equal(count.descriptor.unit, '{connection}')
    assert.equal(count.dataPointType, DataPointType.SUM, 'an UpDownCounter: a non-monotonic sum')
    assert.equal((count as { isMonotonic?: boolean }).isMonotonic, false)
    assert.equal(m.value(SEMCONV.connectionCount.name, { [ATTR_POOL_NAME]: 'orders', [ATTR_STATE]: 'used' }), 3)
    assert.equal(m.value(SEMCONV.connectionCount.name, { [ATTR_POOL_NAME]: 'orders', [ATTR_STATE]: 'idle' }), 1)
    const bName = `${c.primary.host}:${c.port}/${c.database}`
    assert.equal(b.guard.poolName, bName, 'default name: server.address:server.port/db.namespace')
    assert.equal(m.value(SEMCONV.connectionCount.name, { [ATTR_POOL_NAME]: bName, [ATTR_STATE]: 'used' }), 1)
    assert.equal(m.value(SEMCONV.connectionCount.name, { [ATTR_POOL_NAME]: bName, [ATTR_STATE]: 'idle' }), 0)
    assert.equal(m.value(SEMCONV.max.name, { [ATTR_POOL_NAME]: 'orders' }), 5)
    assert.equal(m.value(SEMCONV.max.name, { [ATTR_POOL_NAME]: bName }), 2)
    assert.equal(m.value(SEMCONV.idleMax.name, { [ATTR_POOL_NAME]: 'orders' }), 5)
    assert.equal(m.value(SEMCONV.idleMin.name, { [ATTR_POOL_NAME]: 'orders' }), 0)
    assert.equal(m.metric(SEMCONV.pendingRequests.name).descriptor.unit, '{request}')

    // A second pool to the same target gets a unique name.
    const b2 = new Pool({ ...c.config, guard: { meterProvider: otel.provider } })
    assert.equal(b2.guard.poolName, `${bName}#2`)
    await b2.end()

    for (const cl of heldA.slice(0, 3)) cl.release()
    heldB.release()
    await a.end()
    await b.end()
    const after = await otel.collect()
    assert.equal(after.value(SEMCONV.connectionCount.name, { [ATTR_POOL_NAME]: 'orders', [ATTR_STATE]: 'used' }), 0, 'an ended pool reports zero, then stops')
    assert.equal(after.value(SEMCONV.max.name, { [ATTR_POOL_NAME]: 'orders' }), 0)
  })

  it('wait, use and create times; pending requests and timeouts', async () => {
    const otel = meterProvider()
    const pool = new Pool({ ...cluster.get().config, max: 1, connectionTimeoutMillis: 200, guard: { meterProvider: otel.provider, poolName: 'p' } })
    const held = await pool.connect()
    const waiting = pool.connect().then(() => 'got one', (e: Error) => e.message)
    const during = await otel.collect()
    assert.equal(during.value(SEMCONV.pendingRequests.name, { [ATTR_POOL_NAME]: 'p' }), 1)
    assert.equal(await waiting, 'timeout exceeded when trying to connect')
    await new Promise((r) => setTimeout(r, 20))
    held.release()
    await pool.query('SELECT 1')
    const m = await otel.collect()
    assert.equal(m.value(SEMCONV.timeouts.name, { [ATTR_POOL_NAME]: 'p' }), 1)
    assert.equal(m.metric(SEMCONV.timeouts.name).descriptor.unit, '{timeout}')
    assert.equal(m.value(SEMCONV.createTime.name, { [ATTR_POOL_NAME]: 'p' }), 1, 'one connection created')
    assert.equal(m.value(SEMCONV.waitTime.name, { [ATTR_POOL_NAME]: 'p' }), 2, 'two successful checkouts')
    assert.equal(m.value(SEMCONV.useTime.name, { [ATTR_POOL_NAME]: 'p' }), 2)
    assert.ok(m.histogramSum(SEMCONV.useTime.name, { [ATTR_POOL_NAME]: 'p' })! >= 0.02, 'use time in seconds')
    for (const s of [SEMCONV.createTime, SEMCONV.waitTime, SEMCONV.useTime]) {
      assert.equal(m.metric(s.name).descriptor.unit, 's')
      assert.equal(m.metric(s.name).dataPointType, DataPointType.HISTOGRAM)
    }
    await pool.end()
  })

  it('guard metrics: sockets by state/host/role, evictions and detection time, pass duration, writable hosts', async () => {
    const otel = meterProvider()
    const c = cluster.get()
    const pool = new Pool({ ...c.config, max: 2, guard: { meterProvider: otel.provider, poolName: 'g', targetSessionAttrs: 'read-write' } })
    const client = await pool.connect()
    client.release()
    await until(() => pool.guard.stats().passes > 1, 'the guard ran a pass')
    let m = await otel.collect()
    assert.equal(m.value(GUARD.sockets.name, { [ATTR_POOL_NAME]: 'g', 'pg_pool_guard.tcp.state': 'ESTABLISHED', 'server.address': c.primary.host, 'server.port': c.port, 'pg_pool_guard.role': 'primary' }), 1)
    assert.equal(m.value(GUARD.writableHosts.name, { [ATTR_POOL_NAME]: 'g' }), 1)
    assert.ok(m.value(GUARD.passDuration.name, { [ATTR_POOL_NAME]: 'g' })! > 0)
    // An eviction: a socket left in CLOSE_WAIT (paused, so pg never reads the FIN) is evicted as peer-closed.
    ;(client as unknown as { connection: { stream: { pause(): void } } }).connection.stream.pause()
    const evicted = new Promise<EvictionEvent>((resolve) => pool.guard.once('evict', resolve))
    await c.primary.query('SELECT pg_terminate_backend($1)', [pool.guard.snapshot()[0].backendPid])
    const e = await evicted
    m = await otel.collect()
    assert.equal(m.value(GUARD.evictions.name, { [ATTR_POOL_NAME]: 'g', 'pg_pool_guard.reason': 'peer-closed', 'pg_pool_guard.in_use': false }), 1)
    assert.equal(m.value(GUARD.verdicts.name, { [ATTR_POOL_NAME]: 'g', 'pg_pool_guard.verdict': 'peer-closed' }), 1)
    assert.equal(m.value(GUARD.detectionTime.name, { [ATTR_POOL_NAME]: 'g', 'pg_pool_guard.reason': 'peer-closed' }), 1)
    const detection = m.histogramSum(GUARD.detectionTime.name, { [ATTR_POOL_NAME]: 'g' })!
    assert.ok(Math.abs(detection - (e.at - e.firstEvidenceAt) / 1000) < 0.001)
    await pool.end()
  })

  it('every instrument has a description and a unit, and carries the pool name', async () => {
    const otel = meterProvider()
    const pool = new Pool({ ...cluster.get().config, guard: { meterProvider: otel.provider, poolName: 'all' } })
    await pool.query('SELECT 1')
    await events(pool, 'release', 0)
    const m = await otel.collect()
    // FLEET (issue 21): this instance's judgement of its host, reported once a session reached it.
    const expected = [...Object.values(SEMCONV), ...Object.values(GUARD), ...Object.values(FLEET)]
    for (const spec of expected) {
      const found = m.metrics.find((x) => x.descriptor.name === spec.name)
      if (!found) continue // counters appear once something happened
      assert.equal(found.descriptor.unit, spec.unit, spec.name)
      assert.equal(found.descriptor.description, spec.description, spec.name)
      for (const p of found.dataPoints as { attributes: Record<string, unknown> }[]) assert.equal(p.attributes[ATTR_POOL_NAME], 'all', spec.name)
    }
    for (const found of m.metrics) assert.ok(expected.some((s) => s.name === found.descriptor.name), `unexpected ${found.descriptor.name}`)
    await pool.end()
  })

  it("metrics: 'guard-only' leaves db.client.connection.* to another instrumentation", async () => {
    const otel = meterProvider()
    const pool = new Pool({ ...cluster.get().config, guard: { meterProvider: otel.provider, metrics: 'guard-only' } })
    await pool.query('SELECT 1')
    const m = await otel.collect()
    assert.ok(m.metrics.length > 0)
    assert.ok(m.metrics.every((x) => x.descriptor.name.startsWith('pg_pool_guard.')), m.metrics.map((x) => x.descriptor.name).join())
    await pool.end()
  })
})
