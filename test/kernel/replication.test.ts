/**
 * Replication links, the split-brain early warning (issue 13), on a real primary + streaming standby with
 * the replication connection itself cut by iptables — nothing else. The standby reaches its primary on an
 * address of its own (the primary also listens on 127.0.20.3; the standby's primary_conninfo points there),
 * so a DROP on that address cuts exactly the walreceiver's path while the pool and its monitors keep
 * reaching both servers. Both sides are reported `replication-lost` within seconds (the standby: no
 * upstream; the primary: no standby), nothing is evicted, queries go on, and both are `ok` again after.
 *
 * The servers run with short replication timeouts (wal_receiver_timeout / wal_sender_timeout 2 s, status
 * interval 1 s) so the test takes seconds: the rule bounds a healthy link's silence by those settings, so
 * with PostgreSQL's defaults the same cut is seen ~31 s after it happens (see the README).
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { type EvictionEvent, Pool, type ReplicationTransition } from '../../src/index'
import { REPLICATION } from '../../src/telemetry/semconv'
import { blackhole, type KernelFault } from '../../src/testing/kernel-faults'
import { kernelSkip, until, useCluster } from '../helpers'
import { meterProvider } from '../metrics'

const skip = kernelSkip('test/kernel/replication.test.ts')
const PRIMARY = '127.0.20.1'
const STANDBY = '127.0.20.2'
/** The primary's second address, used only by the standby's walreceiver. */
const REPLICATION_PATH = '127.0.20.3'

const cluster = useCluster({
  standby: true, primaryHost: PRIMARY, standbyHost: STANDBY,
  settings: { wal_receiver_timeout: '2s', wal_sender_timeout: '2s', wal_receiver_status_interval: 1, wal_retrieve_retry_interval: '1s' },
})
let fault: KernelFault | undefined
after(async () => {
  await fault?.remove()
})

describe('replication links (the replication connection cut by iptables)', { skip }, () => {
  it('cut: lost on both sides within 8 s, with the evidence, nothing evicted; ok again within 10 s of the repair', async () => {
    const c = cluster.get()
    const primary = c.primary
    const standby = c.standby!
    // The standby's own path to its primary: the primary listens on a second address, the standby uses it.
    await primary.query(`ALTER SYSTEM SET listen_addresses = '${PRIMARY},${REPLICATION_PATH}'`)
    await c.restart(primary)
    const conninfo = `host=${REPLICATION_PATH} port=${c.port} user=${c.user} password=${c.password} application_name=b connect_timeout=2`
    await standby.query(`ALTER SYSTEM SET primary_conninfo = '${conninfo.replace(/'/g, "''")}'`)
    await standby.query('SELECT pg_reload_conf()')
    await until(async () => {
      const r = await standby.query<{ host: string | null }>("SELECT sender_host AS host FROM pg_stat_wal_receiver WHERE status = 'streaming'")
      return r.rows[0]?.host === REPLICATION_PATH
    }, 'the standby streams over its own path', 20_000, 100)

    const otel = meterProvider()
    const pool = new Pool({ ...c.config, host: c.hosts, max: 4, guard: { meterProvider: otel.provider, poolName: 'repl' } })
    const events: ReplicationTransition[] = []
    pool.guard.on('replication', (t) => events.push(t))
    const evictions: EvictionEvent[] = []
    pool.guard.on('evict', (e) => evictions.push(e))
    const primaryKey = `${PRIMARY}:${c.port}`
    const standbyKey = `${STANDBY}:${c.port}`
    const rep = (key: string) => pool.guard.topology().hosts.find((h) => h.key === key)!.replication
    try {
      await until(() => rep(primaryKey).state === 'streaming' && rep(standbyKey).state === 'streaming', 'both links streaming', 10_000)
      assert.equal(rep(standbyKey).upstream, `${REPLICATION_PATH}:${c.port}`)
      assert.equal(rep(primaryKey).standbys, 1)
      assert.equal(events.length, 0, 'no event while healthy')

      fault = await blackhole(REPLICATION_PATH, { port: c.port })
      const cutAt = Date.now()
      const lost = (key: string) => events.find((e) => e.host === key && e.state === 'lost')
      await until(() => Boolean(lost(standbyKey) && lost(primaryKey)), 'replication-lost on both sides', 15_000)
      const [sLost, pLost] = [lost(standbyKey)!, lost(primaryKey)!]
      assert.equal((await pool.query('SELECT 1 AS one')).rows[0].one, 1, 'the pool is not affected')
      assert.equal(rep(standbyKey).state, 'lost')
      assert.equal(rep(primaryKey).state, 'lost')
      const m = await otel.collect()
      assert.equal(m.value(REPLICATION.state.name, { 'server.address': STANDBY, 'pg_pool_guard.replication.state': 'lost' }), 1)
      assert.equal(m.value(REPLICATION.state.name, { 'server.address': STANDBY, 'pg_pool_guard.replication.state': 'ok' }), 0)

      await fault.remove()
      fault = undefined
      const repairedAt = Date.now()
      const ok = (key: string) => events.find((e) => e.host === key && e.state === 'ok')
      await until(() => Boolean(ok(standbyKey) && ok(primaryKey)), 'replication-ok on both sides', 20_000)
      const [sOk, pOk] = [ok(standbyKey)!, ok(primaryKey)!]
      console.log(`# lost: standby ${sLost.at - cutAt} ms (${sLost.evidence}), primary ${pLost.at - cutAt} ms (${pLost.evidence})`)
      console.log(`# ok: standby ${sOk.at - repairedAt} ms (${sOk.evidence}), primary ${pOk.at - repairedAt} ms (${pOk.evidence})`)
      assert.ok(sLost.at - cutAt < 8000, `standby lost ${sLost.at - cutAt} ms after the cut`)
      assert.ok(pLost.at - cutAt < 8000, `primary lost ${pLost.at - cutAt} ms after the cut`)
      assert.ok(sLost.at - cutAt >= 3000, 'not before replicationLostMs of bad readings')
      assert.match(sLost.evidence, /walreceiver|silent/)
      assert.match(pLost.evidence, /standby/)
      assert.ok(sOk.at - repairedAt < 10_000, `standby ok ${sOk.at - repairedAt} ms after the repair`)
      assert.ok(pOk.at - repairedAt < 10_000, `primary ok ${pOk.at - repairedAt} ms after the repair`)
      assert.deepEqual(events.map((e) => `${e.host} ${e.state}`).sort(), [`${primaryKey} lost`, `${primaryKey} ok`, `${standbyKey} lost`, `${standbyKey} ok`])
      assert.deepEqual(evictions.map((e) => `${e.reason}: ${e.evidence}`), [], 'replication state never evicts')
    } finally {
      await pool.end()
    }
  })
})
