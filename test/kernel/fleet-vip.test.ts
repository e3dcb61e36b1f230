/**
 * The fleet view behind VIPs (issue 21, with the VIP failover of issue 18): 6 instances of the kit's fleet
 * app in 3 zones, each zone reaching the cluster through its own virtual address (DNAT in the zone's
 * namespace, as a load balancer or a Kubernetes Service does), a real Prometheus scraping and evaluating
 * alerts.yml and fleet-alerts.yml every second.
 *
 * - 18 % loss on one instance's own link: PgPoolGuardFleetInstanceLink fires for that instance, and no
 *   other fleet alert fires (the database is not paged).
 * - A failover that leaves zone a behind: the standby is promoted, zones b and c's VIPs move to it (their
 *   old flows reset, as when the address moves to the new machine), zone a's VIP still leads to the old
 *   primary, which stays writable. PgPoolGuardFleetDualWrite fires within 20 s naming 2 instances, and the
 *   old primary is shown to have taken writes after the promotion (the window is real, not a metric).
 * Root only: skipped with the reason otherwise.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { type Fleet, type FleetFault, startFleet } from '../../src/testing/fleet'
import { FLEET_TABLE } from '../../src/testing/fleet-app'
import { checkDashboard, fleetSkip, RULE_FILES, watchUntilFiring } from './fleet-helpers'

const skip = fleetSkip('test/kernel/fleet-vip.test.ts')
let fleet: Fleet | undefined
const faults: FleetFault[] = []

describe('fleet view behind VIPs: one lossy instance, a dual write (6 instances, 3 zones, real Prometheus)', { skip }, () => {
  before(async () => {
    fleet = await startFleet({ connect: 'vip', ruleFiles: RULE_FILES })
  })
  after(async () => {
    for (const f of faults) await f.remove()
    await fleet?.stop()
  })

  it("18 % loss on one instance's own link: only the single-instance alert", async () => {
    const f = fleet!
    const loss = await f.loss('a-0', 0.18)
    faults.push(loss)
    const w = await watchUntilFiring(f, Date.now(), (a) => a.labels.alertname === 'PgPoolGuardFleetInstanceLink', 'the single-instance alert')
    console.log(`# instance link: PgPoolGuardFleetInstanceLink{instance=${w.alert.labels.instance}} firing ${(w.firedAfterMs / 1000).toFixed(1)} s after the loss began; fleet alerts seen: ${[...w.seen].join(' ')}`)
    assert.equal(w.alert.labels.instance, 'a-0')
    assert.equal(w.alert.labels.pg_pool_guard_client_zone, 'a')
    assert.equal(w.alert.labels.severity, 'warning', 'a warning: no page for the database')
    assert.match(w.alert.annotations.description, /^It calls the host (degraded|down); 5 other instances see it healthy\.$/)
    // Nothing else fired on the way, and nothing else is active now: not a partition, not a sick host.
    const others = [...w.seen].filter((s) => !s.startsWith('PgPoolGuardFleetInstanceLink'))
    assert.deepEqual(others.filter((s) => s.endsWith(':firing')), [], 'no other fleet alert fires')
    assert.deepEqual((await f.alerts()).map((a) => a.labels.alertname).filter((n) => n.startsWith('PgPoolGuardFleet') && n !== 'PgPoolGuardFleetInstanceLink'), [])
    await loss.remove()
  })

  it('a failover with zone a still on the old primary: the dual-write alert names 2 instances within 20 s', async () => {
    const f = fleet!
    // Zone a reaches the database only through its VIP: were it able to reach the standby directly, its
    // guards would watch it (discovered from pg_stat_replication) and fence the old primary themselves —
    // the window this alert is for is the one no single guard can see.
    faults.push(await f.cut('b', { zones: ['a'] }))
    await f.caughtUp()
    await f.promote('b')
    const promotedAt = Date.now()
    await f.pointVip('b', 'b', { pinned: 'reset' })
    await f.pointVip('c', 'b', { pinned: 'reset' })
    const w = await watchUntilFiring(f, promotedAt, (a) => a.labels.alertname === 'PgPoolGuardFleetDualWrite', 'the dual-write alert')
    console.log(`# dual write: PgPoolGuardFleetDualWrite firing ${(w.firedAfterMs / 1000).toFixed(1)} s after the promotion: "${w.alert.annotations.summary}" (${w.alert.annotations.description})`)
    assert.ok(w.firedAfterMs <= 20_000, `fired after ${w.firedAfterMs} ms (at most 20 s)`)
    assert.equal(w.alert.labels.db_client_connection_pool_name, 'orders')
    assert.match(w.alert.annotations.summary, /^2 instances of pool orders write to an old primary or to two primaries/)
    assert.equal(w.alert.annotations.description, 'Newest timeline: 2. Instances: a-0 (zone a); a-1 (zone a); ')
    // The window is real: the old primary acknowledged zone a's writes after the promotion, and only zone a's.
    const old = await f.query<{ instance: string }>(`SELECT DISTINCT instance FROM ${FLEET_TABLE} WHERE at > now() - make_interval(secs => $1) ORDER BY 1`, [(Date.now() - promotedAt) / 1000 - 1], 'a')
    assert.deepEqual(old.map((r) => r.instance), ['a-0', 'a-1'], 'the old primary took writes from zone a after the promotion')
    const now = await f.query<{ instance: string }>(`SELECT DISTINCT instance FROM ${FLEET_TABLE} WHERE at > now() - interval '2 seconds' ORDER BY 1`, [], 'b')
    assert.deepEqual(now.map((r) => r.instance), ['b-0', 'b-1', 'c-0', 'c-1'], 'zones b and c write to the new primary')
  })

  it("the fleet dashboard's dual-write panels have data on this Prometheus now", async () => {
    const { withData } = await checkDashboard(fleet!, ['Verdicts per zone', 'Evictions per zone', 'Fleet alerts', 'Host RTT by zone (median instance)'])
    for (const t of ['Instances in the dual-write window', 'Instances writing on each timeline (dual-write exposure)']) assert.ok(withData.includes(t), `"${t}" has data`)
    const timelines = await fleet!.prometheus.query('count_values by (db_client_connection_pool_name) ("timeline", pg_pool_guard_writable_host_timeline > 0)')
    assert.deepEqual(timelines.map((s) => [s.metric.timeline, s.value]).sort(), [['1', 2], ['2', 4]], 'two instances on timeline 1, four on 2')
  })
})
