/**
 * Shared by the fleet tests (fleet.test.ts, fleet-vip.test.ts): skipping with a printed reason, watching the
 * fleet's alerts until one fires (Prometheus has no events: its API is polled, with a deadline), and checking
 * the fleet dashboard's queries against the fleet's real Prometheus.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fleetUnavailable, type Fleet } from '../../src/testing/fleet'
import { prometheusBinary, type PromAlert } from '../../src/testing/prometheus'
import * as semconv from '../../src/telemetry/semconv'

export const ROOT = join(__dirname, '..', '..')
export const RULE_FILES = [join(ROOT, 'examples', 'prometheus', 'alerts.yml'), join(ROOT, 'examples', 'prometheus', 'fleet-alerts.yml')]
export const FLEET_ALERTS = ['PgPoolGuardFleetHostSick', 'PgPoolGuardFleetZonePartition', 'PgPoolGuardFleetInstanceLink', 'PgPoolGuardFleetDualWrite', 'PgPoolGuardFleetReplicationLost']

/** Why the fleet tests cannot run here (printed as `# SKIP <file>: <why>`), or undefined. */
export function fleetSkip(file: string): string | undefined {
  const why = fleetUnavailable() ?? (prometheusBinary() ? null : 'the prometheus binary is not installed (Debian package prometheus; .ci/run installs it as root)')
  if (why) console.log(`# SKIP ${file}: ${why}`)
  return why ?? undefined
}

export interface Watched {
  /** ms from `since` to the first evaluation that showed the wanted alert firing. */
  firedAfterMs: number
  alert: PromAlert
  /** Every fleet alert seen pending or firing meanwhile, as `name{zone,instance,host}:state`. */
  seen: Set<string>
}

export function describeAlert(a: PromAlert): string {
  const l = a.labels
  const where = [l.pg_pool_guard_client_zone && `zone=${l.pg_pool_guard_client_zone}`, l.instance && `instance=${l.instance}`, l.server_address && `host=${l.server_address}`, l.db_client_connection_pool_name && `pool=${l.db_client_connection_pool_name}`].filter(Boolean).join(',')
  return `${l.alertname}{${where}}:${a.state}`
}

/** Polls the alerts every 250 ms until `match` is firing, recording every fleet alert seen on the way. */
export async function watchUntilFiring(fleet: Fleet, since: number, match: (a: PromAlert) => boolean, what: string, timeoutMs = 45_000): Promise<Watched> {
  const seen = new Set<string>()
  const deadline = since + timeoutMs
  for (;;) {
    const alerts = await fleet.alerts(FLEET_ALERTS)
    for (const a of alerts) seen.add(describeAlert(a))
    const hit = alerts.find((a) => a.state === 'firing' && match(a))
    if (hit) return { firedAfterMs: Date.now() - since, alert: hit, seen }
    if (Date.now() > deadline) throw new Error(`${what}: not firing within ${timeoutMs} ms; fleet alerts seen: ${[...seen].join(' ') || 'none'}`)
    await new Promise((r) => setTimeout(r, 250))
  }
}

/** Polls until `cond` holds on the fleet's Prometheus (state with no event), or fails naming `what`. */
export async function untilProm(cond: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<number> {
  const start = Date.now()
  while (!(await cond())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`)
    await new Promise((r) => setTimeout(r, 250))
  }
  return Date.now() - start
}

const dashboard = JSON.parse(readFileSync(join(ROOT, 'examples', 'grafana', 'pg-pool-guard-fleet.json'), 'utf8')) as {
  panels: { title: string; targets: { expr: string }[] }[]
}
const rulesText = readFileSync(join(ROOT, 'examples', 'prometheus', 'fleet-alerts.yml'), 'utf8')
const recorded = new Set([...rulesText.matchAll(/^\s+- record: (\S+)$/gm)].map((m) => m[1]))
/** Label names the exporter makes of semconv.ts's attributes: they match the metric-name pattern too. */
const labelNames = new Set(Object.entries(semconv).filter(([k, v]) => k.startsWith('ATTR_') && typeof v === 'string').map(([, v]) => (v as string).replace(/[^a-zA-Z0-9_]/g, '_')))

/**
 * Every panel of examples/grafana/pg-pool-guard-fleet.json evaluated on the fleet's Prometheus: each names
 * only recording rules fleet-alerts.yml defines and metrics Prometheus has scraped, and returns data —
 * except the panels in `mayBeEmpty` (whose fault this file does not inject), which are returned with the
 * titles that did return data.
 */
export async function checkDashboard(fleet: Fleet, mayBeEmpty: string[]): Promise<{ withData: string[]; empty: string[] }> {
  const res = await fetch(`${fleet.prometheus.url}/api/v1/label/__name__/values`)
  const scraped = new Set(((await res.json()) as { data: string[] }).data)
  const withData: string[] = []
  const empty: string[] = []
  for (const panel of dashboard.panels) {
    let data = false
    for (const t of panel.targets) {
      const records = t.expr.match(/\b[a-z_]+:[a-z_]+:[a-z_]+\b/g) ?? []
      for (const r of records) assert.ok(recorded.has(r), `panel "${panel.title}" uses ${r}, which fleet-alerts.yml does not record`)
      const rest = records.reduce((e, r) => e.split(r).join(' '), t.expr)
      for (const name of rest.match(/\b(db_client_connection|pg_pool_guard)_[a-z_]+/g) ?? []) {
        if (labelNames.has(name)) continue
        assert.ok(scraped.has(name), `panel "${panel.title}" names ${name}, which Prometheus never scraped`)
      }
      if ((await fleet.prometheus.query(t.expr)).length > 0) data = true
    }
    ;(data ? withData : empty).push(panel.title)
  }
  assert.deepEqual(empty.filter((t) => !mayBeEmpty.includes(t)), [], 'fleet dashboard panels without data')
  return { withData, empty }
}
