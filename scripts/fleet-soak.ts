/**
 * The fleet's healthy run (issue 21, done-when: "a healthy run of 5 minutes under load: no alert at all"),
 * too long for the test suite: 6 instances of examples/prometheus/app.mjs in 3 zones, each with its 4
 * built-in writers, a real Prometheus scraping every second and evaluating alerts.yml and fleet-alerts.yml
 * every second. At the end Prometheus itself is asked whether any alert was pending or firing at any
 * evaluation of the window (`count_over_time(ALERTS[...])`), so no poll can miss one. It also counts the
 * series each instance exports (the cardinality the README states). Root only.
 *
 *   node --import tsx scripts/fleet-soak.ts [--minutes 5]
 *
 * Exit code 1 when any alert was raised.
 */
import { join } from 'node:path'
import { startFleet } from '../src/testing/fleet'

const root = join(__dirname, '..')
const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name)
  return i > 0 ? Number(process.argv[i + 1]) : dflt
}

async function main(): Promise<number> {
  const minutes = arg('--minutes', 5)
  const fleet = await startFleet({
    app: join(root, 'examples', 'prometheus', 'app.mjs'),
    ruleFiles: [join(root, 'examples', 'prometheus', 'alerts.yml'), join(root, 'examples', 'prometheus', 'fleet-alerts.yml')],
  })
  try {
    const p = fleet.prometheus
    // Every rule evaluated once before the window opens (no rule is judged on a fleet still starting).
    const since = new Date()
    for (;;) {
      const rules = (await p.rules()).flatMap((g) => g.rules)
      if (rules.length > 0 && rules.every((r) => r.health === 'ok' && new Date(r.lastEvaluation) > since)) break
      await new Promise((r) => setTimeout(r, 250))
    }
    const rows = async (): Promise<number> => Number((await fleet.query<{ n: string }>('SELECT count(*)::text AS n FROM orders'))[0].n)
    const startRows = await rows()
    const started = Date.now()
    const end = started + minutes * 60_000
    console.log(`fleet: ${fleet.instances.length} instances in ${fleet.zones.length} zones, healthy for ${minutes} min under the apps' own load; Prometheus ${p.url}`)
    while (Date.now() < end) {
      await new Promise((r) => setTimeout(r, Math.min(30_000, end - Date.now())))
      const active = await fleet.alerts()
      console.log(`  t+${Math.round((Date.now() - started) / 1000)} s: ${(await rows()) - startRows} writes acknowledged, alerts active: ${active.map((a) => `${a.labels.alertname}:${a.state}`).join(' ') || 'none'}`)
    }
    const windowS = Math.floor((Date.now() - started) / 1000)
    const raised = await p.query(`count_over_time(ALERTS[${windowS}s])`)
    const writes = (await rows()) - startRows
    const perInstance = await p.query('count by (instance) ({job="fleet", __name__=~"pg_pool_guard_.*|db_client_connection_.*"})')
    const families = await p.query('count by (__name__) ({instance="a-0", __name__=~"pg_pool_guard_.*|db_client_connection_.*"})')
    const evaluations = await p.query(`sum(count_over_time(instance:pg_pool_guard_host_bad:max[${windowS}s]))`)
    console.log('')
    console.log('| healthy run | value |')
    console.log('| --- | --- |')
    console.log(`| duration | ${windowS} s |`)
    console.log(`| instances, zones | ${fleet.instances.length}, ${fleet.zones.length} |`)
    console.log(`| writes acknowledged (4 writers per instance) | ${writes} (${Math.round(writes / windowS)}/s) |`)
    console.log(`| host judgements evaluated (instance × host × evaluation) | ${evaluations[0]?.value ?? 0} |`)
    console.log(`| alerts pending or firing at any evaluation (alerts.yml + fleet-alerts.yml) | ${raised.length === 0 ? 'none' : raised.map((s) => `${s.metric.alertname}{${s.metric.instance ?? s.metric.server_address ?? ''}} ×${s.value}`).join(', ')} |`)
    console.log(`| series per instance (pg_pool_guard_*, db_client_connection_*; 1 pool, 2 hosts) | ${[...new Set(perInstance.map((s) => s.value))].sort((a, b) => a - b).join(' to ')} |`)
    console.log('')
    console.log(`series of instance a-0 by family: ${families.sort((a, b) => a.metric.__name__.localeCompare(b.metric.__name__)).map((s) => `${s.metric.__name__} ${s.value}`).join(', ')}`)
    return raised.length === 0 ? 0 : 1
  } finally {
    await fleet.stop()
  }
}

main().then((code) => process.exit(code), (err: Error) => {
  console.error(err.message)
  process.exit(1)
})
