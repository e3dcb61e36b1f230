/**
 * Beside the real @opentelemetry/instrumentation-pg (registered before pg is loaded, as an SDK does): two
 * guarded pools, an sdk-metrics MeterProvider and the Prometheus exporter, the scraped page checked by
 * promtool and read back per pool. Both exporter versions: 0.223 (the newest that supports Node 20; it
 * writes one HELP line per scope, so same-named metrics from two scopes break the page) and the current
 * one (it merges them into one family).
 *
 * What the default does and why: src/telemetry/metrics.ts, "Beside @opentelemetry/instrumentation-pg".
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { registerInstrumentations } from '@opentelemetry/instrumentation'
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg'
import { PrometheusExporter as CurrentExporter } from '@opentelemetry/exporter-prometheus'
import * as currentSdk from '@opentelemetry/sdk-metrics'
import { PrometheusExporter as OldExporter } from 'exporter-prometheus-old'

// Registered before anything loads pg: require-in-the-middle patches pg-pool as it is required. The modules
// that load pg are therefore required below, not imported (imports would run first).
const instrumentation = new PgInstrumentation()
registerInstrumentations({ instrumentations: [instrumentation] })
const { Pool } = require('../../src/index') as typeof import('../../src/index')
const { useCluster } = require('../helpers') as typeof import('../helpers')
const { INSTRUMENTATION_PG_POOL_VIEW, WARN_INSTRUMENTATION_PG, instrumentationPgPatchesPools } = require('../../src/telemetry/metrics') as typeof import('../../src/telemetry/metrics')

// 0.223's own sdk-metrics (2.x), as a Node 20 install would have it.
const oldSdk = createRequire(require.resolve('exporter-prometheus-old'))('@opentelemetry/sdk-metrics') as typeof currentSdk
const versionOf = (dir: string): string => (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version
const versions = {
  old: versionOf(join(__dirname, '..', '..', 'node_modules', 'exporter-prometheus-old')),
  current: versionOf(join(__dirname, '..', '..', 'node_modules', '@opentelemetry', 'exporter-prometheus')),
}

function promtoolMissing(): string | undefined {
  if (!spawnSync('promtool', ['--version']).error) return undefined
  const why = 'promtool is not installed (Debian package prometheus provides /usr/bin/promtool)'
  console.log(`# SKIP test/pg/otel-instrumentation-pg.test.ts: ${why}`)
  return why
}
const skip = promtoolMissing()
const cluster = useCluster({ primaryHost: '127.0.7.3' })

const warnings: Error[] = []
const onWarning = (w: Error): void => {
  if ((w as Error & { code?: string }).code === WARN_INSTRUMENTATION_PG) warnings.push(w)
}
process.on('warning', onWarning)
after(() => {
  process.off('warning', onWarning)
  instrumentation.disable()
})

/** promtool check metrics: a parse error (exit 1) rejects the page; lint findings (exit 3) do not. */
function promtool(page: string): { status: number | null; parseError: string | undefined; lint: string[] } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: page, encoding: 'utf8' })
  const lines = `${r.stdout}\n${r.stderr}`.split('\n').map((l) => l.trim()).filter(Boolean)
  const parseError = lines.find((l) => l.startsWith('error while linting'))
  return { status: r.status, parseError, lint: lines.filter((l) => l !== parseError) }
}

interface Sample { name: string; labels: Record<string, string>; value: number }

function samples(page: string): Sample[] {
  const out: Sample[] = []
  for (const line of page.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)/.exec(line)
    if (!m) continue
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2]
    out.push({ name: m[1], labels, value: Number(m[3]) })
  }
  return out
}

const OURS = 'pg-pool-guard'
const THEIRS = '@opentelemetry/instrumentation-pg'

/** Two guarded pools holding 3 of 5 and 1 of 2; the page the exporter serves while they do. */
async function scrape(kind: 'old' | 'current', withView: boolean): Promise<{ page: string; s: Sample[] }> {
  const sdk = kind === 'old' ? oldSdk : currentSdk
  const exporter = kind === 'old' ? new OldExporter({ preventServerStart: true }) : new CurrentExporter({ preventServerStart: true })
  const provider = new sdk.MeterProvider({
    readers: [exporter as unknown as currentSdk.MetricReader],
    views: withView ? [INSTRUMENTATION_PG_POOL_VIEW as unknown as currentSdk.ViewOptions] : [],
  })
  instrumentation.setMeterProvider(provider)
  const c = cluster.get()
  const orders = new Pool({ ...c.config, max: 5, guard: { meterProvider: provider, poolName: 'orders' } })
  const reports = new Pool({ ...c.config, max: 2, guard: { meterProvider: provider, poolName: 'reports' } })
  await orders.query('SELECT 1')
  const held = [...(await Promise.all([orders.connect(), orders.connect(), orders.connect()])), await reports.connect()]
  const server = http.createServer((req, res) => exporter.getMetricsRequestHandler(req, res))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  try {
    const page = await (await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`)).text()
    return { page, s: samples(page) }
  } finally {
    server.close()
    for (const h of held) h.release()
    await Promise.all([orders.end(), reports.end()])
    await provider.shutdown()
  }
}

function value(s: Sample[], name: string, labels: Record<string, string>): number | undefined {
  const found = s.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v))
  assert.ok(found.length <= 1, `one series for ${name} ${JSON.stringify(labels)}, got ${found.length}`)
  return found[0]?.value
}

/** Our per-pool numbers, right on any page. */
function assertOursPerPool(s: Sample[]): void {
  const ours = { otel_scope_name: OURS }
  assert.equal(value(s, 'db_client_connection_count', { ...ours, db_client_connection_pool_name: 'orders', db_client_connection_state: 'used' }), 3)
  assert.equal(value(s, 'db_client_connection_count', { ...ours, db_client_connection_pool_name: 'orders', db_client_connection_state: 'idle' }), 0)
  assert.equal(value(s, 'db_client_connection_count', { ...ours, db_client_connection_pool_name: 'reports', db_client_connection_state: 'used' }), 1)
  assert.equal(value(s, 'db_client_connection_max', { ...ours, db_client_connection_pool_name: 'orders' }), 5)
  assert.equal(value(s, 'db_client_connection_max', { ...ours, db_client_connection_pool_name: 'reports' }), 2)
  assert.equal(value(s, 'db_client_connection_pending_requests', { ...ours, db_client_connection_pool_name: 'orders' }), 0)
}

/** Lint findings we accept: the semantic-convention name db.client.connection.count ends in _count. */
function assertOnlyKnownLint(lint: string[]): void {
  for (const l of lint) assert.match(l, /^db_client_connection_count non-histogram and non-summary metrics should not have "_count" suffix$/, l)
}

describe('beside @opentelemetry/instrumentation-pg, with the Prometheus exporter', { skip }, () => {
  it('is detected: the default warns once, naming the View that fixes it', async () => {
    assert.equal(instrumentationPgPatchesPools(), true, 'instrumentation-pg wrapped pg-pool connect')
    const { s } = await scrape('current', false)
    assert.ok(s.some((x) => x.name === 'db_client_connection_count' && x.labels.otel_scope_name === THEIRS), 'instrumentation-pg reports pool counts too')
    await scrape('current', false)
    assert.equal(warnings.length, 1, 'one warning per process')
    assert.match(warnings[0].message, /instrumentation-pg.*#3354.*two HELP lines.*meterName: '@opentelemetry\/instrumentation-pg', instrumentName: 'db\.client\.connection\.\*'/s)
    console.log(`# warning: ${warnings[0].message}`)
  })

  for (const kind of ['old', 'current'] as const) {
    it(`exporter ${kind}: with INSTRUMENTATION_PG_POOL_VIEW the page passes promtool and each pool has one right series`, async () => {
      const { page, s } = await scrape(kind, true)
      const check = promtool(page)
      console.log(`# exporter-prometheus ${versions[kind]} + View: promtool exit ${check.status}${check.lint.length ? `; lint: ${check.lint.join('; ')}` : ''}`)
      assert.equal(check.parseError, undefined, check.parseError)
      assert.notEqual(check.status, 1)
      assertOnlyKnownLint(check.lint)
      assert.equal(page.match(/^# HELP db_client_connection_count /gm)?.length, 1)
      assert.ok(!s.some((x) => x.name.startsWith('db_client_connection_') && x.labels.otel_scope_name === THEIRS), 'its pool metrics dropped')
      assert.ok(page.includes('db_client_operation_duration'), 'its query duration kept')
      assertOursPerPool(s)
    })
  }

  it('exporter current, no View: one family per name (promtool passes); ours stay right per pool beside its shared counter', async () => {
    const { page, s } = await scrape('current', false)
    const check = promtool(page)
    console.log(`# exporter-prometheus ${versions.current}, no View: promtool exit ${check.status}${check.lint.length ? `; lint: ${check.lint.join('; ')}` : ''}`)
    assert.equal(check.parseError, undefined, check.parseError)
    assertOnlyKnownLint(check.lint)
    assertOursPerPool(s)
    const theirs = s.filter((x) => x.name === 'db_client_connection_max' && x.labels.otel_scope_name === THEIRS)
    console.log(`# instrumentation-pg's db_client_connection_max: ${theirs.map((x) => `${x.labels.db_client_connection_pool_name}=${x.value}`).join(', ')} (two pools of 5 and 2)`)
  })

  it('exporter 0.223, no View: two HELP lines, promtool rejects the page (why the default warns)', async () => {
    const { page } = await scrape('old', false)
    const check = promtool(page)
    console.log(`# exporter-prometheus ${versions.old}, no View: promtool exit ${check.status}: ${check.parseError}`)
    assert.match(check.parseError ?? '', /second HELP line for metric name "db_client_connection_/)
  })

  it("metrics: 'guard-only' beside it warns that its counts are shared by every pool", async () => {
    const provider = new currentSdk.MeterProvider({ readers: [new CurrentExporter({ preventServerStart: true })] })
    const pool = new Pool({ ...cluster.get().config, guard: { meterProvider: provider, metrics: 'guard-only' } })
    await pool.end()
    await provider.shutdown()
    const w = warnings.find((x) => /'guard-only'/.test(x.message))
    assert.ok(w, 'a guard-only warning')
    assert.match(w.message, /shared by every pool.*#3354/)
  })
})
