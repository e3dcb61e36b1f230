/**
 * `pg-pool-guard demo --fleet` (issue 21): six app instances in three zones (network namespaces, root only)
 * in front of a primary and its standby, a real Prometheus evaluating the fleet rules every second, and the
 * host × zone matrix printed every second from Prometheus's answers. Three acts: healthy; the primary cut off
 * from zone a only (the matrix turns red for zone a, and the partition alert fires — not the host's); the
 * primary gone for every zone (red across, the host-sick alert). Everything it builds it removes.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { type Fleet, fleetUnavailable, startFleet } from '../testing/fleet'
import { prometheusBinary, type PromAlert } from '../testing/prometheus'
import { CliError, CliErrorCodes } from './errors'

export interface FleetDemoOptions {
  /** Shorter acts (about 45 s in all). */
  short?: boolean
  out?: (line: string) => void
}

export interface FleetDemoSummary {
  zones: string[]
  instances: number
  /** ms from the cut to the partition alert firing for zone a; null: not within the act. */
  partitionFiredAfterMs: number | null
  /** Fleet alerts seen (pending or firing) during the partition act. */
  partitionAlerts: string[]
  hostSickFiredAfterMs: number | null
  hostSickAlerts: string[]
  /** The per-instance rules (alerts.yml) seen pending or firing in each act, as `name{instance}`. */
  perInstanceAlerts: { partition: string[]; hostSick: string[] }
}

/** One instance's judgement of one host, as Prometheus has it. */
export interface InstanceStatus {
  instance: string
  zone: string
  host: string
  status: 'up' | 'degraded' | 'down'
}

const GLYPH: Record<InstanceStatus['status'], string> = { up: '·', degraded: '▒', down: '█' }

/**
 * The host × zone matrix as text, one line per host: per zone one glyph per instance (· up, ▒ degraded,
 * █ down) and how many judge it bad; then the fleet alerts about that host. Pure, for the unit tests.
 */
export function renderMatrix(statuses: InstanceStatus[], zones: string[], hostNames: Record<string, string>, alerts: PromAlert[]): string[] {
  const hosts = [...new Set(statuses.map((s) => s.host))].sort()
  return hosts.map((host) => {
    const cells = zones.map((z) => {
      const mine = statuses.filter((s) => s.host === host && s.zone === z).sort((a, b) => a.instance.localeCompare(b.instance))
      const bad = mine.filter((s) => s.status !== 'up').length
      return `${z} ${mine.map((s) => GLYPH[s.status]).join('')} ${bad}/${mine.length}`.padEnd(12)
    })
    const about = alerts
      .filter((a) => a.labels.server_address === host.split(':')[0] && a.labels.alertname.startsWith('PgPoolGuardFleet'))
      .map((a) => `${a.labels.alertname.replace('PgPoolGuardFleet', '')}${a.labels.pg_pool_guard_client_zone ? `(zone ${a.labels.pg_pool_guard_client_zone})` : ''}${a.labels.instance ? `(${a.labels.instance})` : ''} ${a.state.toUpperCase()}`)
    return `${`${host} ${hostNames[host] ?? ''}`.padEnd(26)}| ${cells.join('| ')}| ${about.join(', ')}`
  })
}

/** The package's rule files (they ship with it); fleet-alerts.yml is required. */
function ruleFiles(): string[] {
  const dir = join(__dirname, '..', '..', 'examples', 'prometheus')
  const files = ['alerts.yml', 'fleet-alerts.yml'].map((f) => join(dir, f))
  if (!existsSync(files[1])) throw new CliError(CliErrorCodes.FAILED, `demo --fleet needs the fleet rules, ${files[1]}, which are missing from this installation`)
  return files
}

async function statuses(fleet: Fleet): Promise<InstanceStatus[]> {
  return (await fleet.prometheus.query('max by (instance, pg_pool_guard_client_zone, server_address, server_port, pg_pool_guard_host_status) (pg_pool_guard_host_status) == 1')).map((s) => ({
    instance: s.metric.instance,
    zone: s.metric.pg_pool_guard_client_zone ?? '',
    host: `${s.metric.server_address}:${s.metric.server_port}`,
    status: s.metric.pg_pool_guard_host_status as InstanceStatus['status'],
  }))
}

export async function runFleetDemo(options: FleetDemoOptions = {}): Promise<FleetDemoSummary> {
  const out = options.out ?? ((l: string) => console.log(l))
  const why = fleetUnavailable()
  if (why) throw new CliError(CliErrorCodes.FAILED, `demo --fleet builds network namespaces and needs root: ${why}`, 1)
  if (!prometheusBinary()) throw new CliError(CliErrorCodes.FAILED, 'demo --fleet needs Prometheus: install the prometheus package (apt-get install -y prometheus)', 1)
  for (const pkg of ['@opentelemetry/sdk-metrics', '@opentelemetry/exporter-prometheus', '@opentelemetry/resources']) {
    try {
      require.resolve(pkg)
    } catch {
      throw new CliError(CliErrorCodes.FAILED, `demo --fleet runs app instances that export metrics with ${pkg}: npm install ${pkg}`, 1)
    }
  }
  const rules = ruleFiles()
  const zones = ['a', 'b', 'c']
  const healthyS = options.short ? 3 : 6
  const actS = options.short ? 18 : 25
  out('pg-pool-guard demo --fleet: 6 app instances in 3 zones (network namespaces), a primary and its standby,')
  out('and a real Prometheus scraping every instance and evaluating examples/prometheus/fleet-alerts.yml every second.')
  out('starting the fleet ...')
  const fleet = await startFleet({ zones, ruleFiles: rules })
  const onSignal = (): void => {
    void fleet.stop().then(() => process.exit(130))
  }
  process.once('SIGINT', onSignal)
  try {
    const primary = fleet.server('a').host
    const hostNames = Object.fromEntries(fleet.servers.map((s) => [`${s.host}:${s.port}`, s.role]))
    out(`prometheus: ${fleet.prometheus.url}  (host × zone matrix: zone:pg_pool_guard_host_bad:ratio)`)
    out('each zone: one glyph per instance — · sees the host up, ▒ degraded, █ down — and how many judge it bad')
    const watch = async (title: string, seconds: number, wanted: string | null): Promise<{ firedAfterMs: number | null; seen: string[]; perInstance: string[] }> => {
      out('')
      out(title)
      const t0 = Date.now()
      const seen = new Set<string>()
      const perInstance = new Set<string>()
      let firedAfterMs: number | null = null
      for (let sec = 1; sec <= seconds; sec++) {
        await new Promise((r) => setTimeout(r, Math.max(0, t0 + sec * 1000 - Date.now())))
        const all = await fleet.alerts()
        for (const a of all) if (!a.labels.alertname.startsWith('PgPoolGuardFleet')) perInstance.add(`${a.labels.alertname}{${a.labels.instance}}`)
        const alerts = all.filter((a) => a.labels.alertname.startsWith('PgPoolGuardFleet'))
        for (const a of alerts) seen.add(`${a.labels.alertname}${a.labels.pg_pool_guard_client_zone ? `{zone=${a.labels.pg_pool_guard_client_zone}}` : ''}:${a.state}`)
        if (wanted && firedAfterMs === null && alerts.some((a) => a.labels.alertname === wanted && a.state === 'firing')) firedAfterMs = Date.now() - t0
        const lines = renderMatrix(await statuses(fleet), zones, hostNames, alerts)
        lines.forEach((l, i) => out(`  ${i === 0 ? `t+${String(sec).padStart(2)} s` : '      '}  ${l}`))
        // Once it has fired, a few more seconds to see it hold, then the next act.
        if (firedAfterMs !== null && Date.now() - t0 > firedAfterMs + 3000) break
      }
      return { firedAfterMs, seen: [...seen], perInstance: [...perInstance].sort() }
    }
    await watch(`Act 1 — healthy, ${healthyS} s`, healthyS, null)
    let fault = await fleet.cut('a', { zones: ['a'] })
    const partition = await watch(`Act 2 — the primary ${primary} cut off from zone a only (iptables in zone a's namespace)`, actS, 'PgPoolGuardFleetZonePartition')
    await fault.remove()
    await watch('       healed', options.short ? 4 : 6, null)
    fault = await fleet.cut('a')
    const sick = await watch(`Act 3 — the primary ${primary} gone for every zone`, actS, 'PgPoolGuardFleetHostSick')
    await fault.remove()
    const summary: FleetDemoSummary = {
      zones, instances: fleet.instances.length,
      partitionFiredAfterMs: partition.firedAfterMs, partitionAlerts: partition.seen,
      hostSickFiredAfterMs: sick.firedAfterMs, hostSickAlerts: sick.seen,
      perInstanceAlerts: { partition: partition.perInstance, hostSick: sick.perInstance },
    }
    const s = (ms: number | null): string => (ms === null ? 'not within the act' : `after ${(ms / 1000).toFixed(1)} s`)
    out('')
    out(`zone a cut off:   PgPoolGuardFleetZonePartition for zone a fired ${s(partition.firedAfterMs)}; the host-sick alert ${partition.seen.some((x) => x.startsWith('PgPoolGuardFleetHostSick')) ? 'was raised too' : 'was not raised'}`)
    out(`primary gone:     PgPoolGuardFleetHostSick fired ${s(sick.firedAfterMs)}; the partition alert ${sick.seen.some((x) => x.startsWith('PgPoolGuardFleetZonePartition') && x.endsWith(':firing')) ? 'fired too' : 'did not fire'}`)
    const names = (xs: string[]): string => {
      const counts = new Map<string, number>()
      for (const x of xs) counts.set(x.replace(/\{.*$/, ''), (counts.get(x.replace(/\{.*$/, '')) ?? 0) + 1)
      return [...counts].map(([n, c]) => `${c} × ${n}`).join(', ') || 'nothing'
    }
    out(`per instance (alerts.yml), pending or firing meanwhile: zone a cut off: ${names(partition.perInstance)}; primary gone: ${names(sick.perInstance)}`)
    return summary
  } finally {
    process.off('SIGINT', onSignal)
    await fleet.stop()
  }
}
