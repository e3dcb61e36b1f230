/**
 * The fleet view, done-when of issue 21, on real parts: 6 instances of examples/prometheus/app.mjs in 3 zones
 * (2 each; network namespaces, each instance on its own link), a real primary + standby in a namespace of
 * their own, a real Prometheus scraping every instance every second and evaluating alerts.yml and
 * fleet-alerts.yml every second. Faults are iptables rules in the zones' namespaces.
 *
 * - Healthy: every rule evaluates, and no alert of either file is pending or firing.
 * - The primary cut from zone a only: PgPoolGuardFleetZonePartition fires for zone a within 20 s; the
 *   host-sick alert is never even pending. The fleet dashboard's every query, on this Prometheus, then.
 * - The primary blackholed for every zone: PgPoolGuardFleetHostSick fires within 20 s; the partition
 *   alert never fires (while the zones notice one after the other it may be pending for a moment).
 * The lossy instance link and the dual write are fleet-vip.test.ts; the 5-minute healthy run is
 * scripts/fleet-soak.ts (its result is in the README). Root only: skipped with the reason otherwise.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { type Fleet, type FleetFault, startFleet } from '../../src/testing/fleet'
import { checkDashboard, FLEET_ALERTS, fleetSkip, ROOT, RULE_FILES, untilProm, watchUntilFiring } from './fleet-helpers'

const skip = fleetSkip('test/kernel/fleet.test.ts')
let fleet: Fleet | undefined
let fault: FleetFault | undefined
const PRIMARY = '198.18.2.1'

describe('fleet view: partition, sick host (6 instances, 3 zones, real Prometheus)', { skip }, () => {
  before(async () => {
    fleet = await startFleet({ app: join(ROOT, 'examples', 'prometheus', 'app.mjs'), ruleFiles: RULE_FILES })
  })
  after(async () => {
    await fault?.remove()
    await fleet?.stop()
  })

  it('healthy: every rule evaluates, nothing pending or firing', async () => {
    const f = fleet!
    const since = new Date()
    await untilProm(async () => {
      const rules = (await f.prometheus.rules()).flatMap((g) => g.rules)
      return rules.length > 0 && rules.every((r) => r.health === 'ok' && new Date(r.lastEvaluation) > since)
    }, 'Prometheus evaluated every rule of alerts.yml and fleet-alerts.yml')
    const rules = (await f.prometheus.rules()).flatMap((g) => g.rules)
    for (const name of FLEET_ALERTS) assert.ok(rules.some((r) => r.name === name), `${name} is loaded`)
    // Five evaluations in a row, then Prometheus's own record of them: ALERTS has no sample at all.
    await new Promise((r) => setTimeout(r, 5000))
    assert.deepEqual((await f.prometheus.query('count_over_time(ALERTS[5s])')).map((s) => s.metric.alertname), [], 'no alert while the fleet is healthy')
    const matrix = await f.prometheus.query(`zone:pg_pool_guard_host_bad:ratio{server_address="${PRIMARY}"}`)
    assert.deepEqual(matrix.map((s) => [s.metric.pg_pool_guard_client_zone, s.value]).sort(), [['a', 0], ['b', 0], ['c', 0]], 'every zone sees the primary healthy')
  })

  it('the primary cut from zone a only: the partition alert fires for zone a within 20 s, host-sick never', async () => {
    const f = fleet!
    fault = await f.cut('a', { zones: ['a'] })
    const w = await watchUntilFiring(f, Date.now(), (a) => a.labels.alertname === 'PgPoolGuardFleetZonePartition' && a.labels.pg_pool_guard_client_zone === 'a', 'the partition alert for zone a')
    console.log(`# partition: PgPoolGuardFleetZonePartition{zone=a} firing ${(w.firedAfterMs / 1000).toFixed(1)} s after the cut; fleet alerts seen: ${[...w.seen].join(' ')}`)
    assert.equal(w.alert.labels.server_address, PRIMARY)
    assert.match(w.alert.annotations.summary, /^Zone a has lost its path to database host 198\.18\.2\.1:5432/)
    assert.match(w.alert.annotations.description, /^2 of 2 instances in zone a judge it down or degraded; zones that see it healthy: 2\./)
    assert.ok(w.firedAfterMs <= 20_000, `fired after ${w.firedAfterMs} ms (at most 20 s)`)
    assert.deepEqual([...w.seen].filter((s) => s.startsWith('PgPoolGuardFleetHostSick')), [], 'host-sick is never even pending for a partition')
    assert.deepEqual([...w.seen].filter((s) => /PgPoolGuardFleetZonePartition\{zone=[bc]/.test(s)), [], 'no other zone is called partitioned')
  })

  it("the fleet dashboard's every query returns data on this Prometheus, during the partition", async () => {
    // Zones b and c still write, zone a has verdicts and evictions, an alert fires. Only the dual-write
    // panel waits for its fault (fleet-vip.test.ts checks it there).
    const { withData, empty } = await checkDashboard(fleet!, ['Instances in the dual-write window'])
    console.log(`# fleet dashboard: ${withData.length} panels with data${empty.length ? `; empty here (checked in fleet-vip.test.ts): ${empty.join(', ')}` : ''}`)
    assert.ok(withData.length >= 11)
  })

  it('the primary blackholed for every zone: the host-sick alert fires within 20 s, the partition alert does not', async () => {
    const f = fleet!
    // From a healthy fleet: the partition healed first.
    await fault?.remove()
    fault = undefined
    const healed = await untilProm(async () => (await f.prometheus.query(`zone:pg_pool_guard_host_bad:ratio{server_address="${PRIMARY}"} > 0`)).length === 0
      && (await f.alerts(FLEET_ALERTS)).length === 0, 'every zone sees the primary healthy again, no fleet alert')
    console.log(`# partition healed: every zone sees the primary up again ${(healed / 1000).toFixed(1)} s after the rules were removed`)
    fault = await f.cut('a')
    const w = await watchUntilFiring(f, Date.now(), (a) => a.labels.alertname === 'PgPoolGuardFleetHostSick', 'the host-sick alert')
    console.log(`# host sick: PgPoolGuardFleetHostSick firing ${(w.firedAfterMs / 1000).toFixed(1)} s after the blackhole; fleet alerts seen: ${[...w.seen].join(' ')}`)
    assert.equal(w.alert.labels.server_address, PRIMARY)
    // Two zones are enough to call it; the third may be a scrape behind at that evaluation.
    assert.match(w.alert.annotations.summary, /^Database host 198\.18\.2\.1:5432 is down or degraded as seen from [23] zones$/)
    assert.ok(w.firedAfterMs <= 20_000, `fired after ${w.firedAfterMs} ms (at most 20 s)`)
    assert.deepEqual([...w.seen].filter((s) => s.startsWith('PgPoolGuardFleetZonePartition') && s.endsWith(':firing')), [], 'the partition alert does not fire for a dead host')
    // A few evaluations more: every zone agrees, and no partition is pending.
    await new Promise((r) => setTimeout(r, 3000))
    assert.deepEqual((await f.prometheus.query(`host:pg_pool_guard_host_sick:zones{server_address="${PRIMARY}"}`)).map((x) => x.value), [3], 'all three zones judge the primary down')
    assert.deepEqual((await f.alerts(['PgPoolGuardFleetZonePartition'])).map((a) => a.labels.pg_pool_guard_client_zone), [], 'no partition once every zone agrees')
  })
})
