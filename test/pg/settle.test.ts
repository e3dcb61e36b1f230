/**
 * Every query settles (issue 11), on faults the kernel cannot see and transports it cannot read: a frozen
 * server, Unix-domain sockets, slow links behind a userspace proxy; and the guard's own resources never
 * keep a process alive, and a rejected attempt never reaches the pool as an 'error'.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { ErrorCodes, type EvictionEvent, Pool } from '../../src/index'
import { type Cluster, startCluster } from '../../src/testing/cluster'
import { faultProxy } from '../../src/testing/proxy'
import { until } from '../helpers'
import { queryLoop } from '../helpers-load'

let cluster: Cluster | undefined
const get = async (): Promise<Cluster> => (cluster ??= await startCluster({ standby: true, primaryHost: '127.0.12.31', standbyHost: '127.0.12.32' }))
after(async () => {
  await cluster?.stop()
})

describe('every query settles (no kernel faults needed)', () => {
  it('the only server frozen (SIGSTOP) for 6 s, 8 workers: no query held past 3 s; first success within 1 s of the thaw', async () => {
    const c = await get()
    const pool = new Pool({ ...c.config, max: 8 })
    const load = queryLoop(() => pool.query('SELECT 1'))
    await until(() => load.outcomes.filter((o) => o.ok).length > 50, 'the load runs')
    c.primary.freeze()
    const frozenAt = Date.now()
    await new Promise((r) => setTimeout(r, 6000))
    c.primary.thaw()
    const thawedAt = Date.now()
    await until(() => load.firstOkAfter(thawedAt) !== undefined, 'a query succeeds after the thaw', 10_000)
    const first = load.firstOkAfter(thawedAt)!
    const held = load.longestHeldMs(frozenAt)
    await load.stop()
    const codes = new Set(load.outcomes.filter((o) => !o.ok && o.startedAt >= frozenAt).map((o) => o.code))
    console.log(`# frozen 6 s: longest query held ${held} ms, codes ${[...codes].join(', ')}; first success ${first.endedAt - thawedAt} ms after the thaw`)
    assert.ok(held < 3000, `a query was held ${held} ms`)
    assert.ok([...codes].every((x) => x === ErrorCodes.CONNECTION_EVICTED || x === ErrorCodes.HOST_DOWN), [...codes].join())
    assert.ok(first.endedAt - thawedAt < 1000, `first success ${first.endedAt - thawedAt} ms after the thaw`)
    await pool.end()
  })

  it('a Unix-domain socket: no kernel verdicts (no TCP_INFO there), 10 alternating SELECT 1 / pg_sleep(0.8) on one connection', async () => {
    const c = await get()
    const pool = new Pool({ host: c.primary.socketDir, port: c.port, user: c.user, database: c.database, max: 1 })
    const evictions: EvictionEvent[] = []
    pool.guard.on('evict', (e) => evictions.push(e))
    let connects = 0
    pool.on('connect', () => connects++)
    for (let i = 0; i < 10; i++) await pool.query(i % 2 ? 'SELECT pg_sleep(0.8)' : 'SELECT 1')
    assert.deepEqual(evictions, [])
    assert.equal(connects, 1)
    assert.equal(pool.guard.snapshot()[0].transport, 'unix')
    await pool.end()
  })

  for (const latencyMs of [200, 500]) {
    it(`a healthy pg_sleep(6.5) over ${latencyMs} ms latency each way (SCRAM login) completes: the probes respect the link`, async () => {
      const c = await get()
      const proxy = await faultProxy({ host: c.primary.host, port: c.port })
      const pool = new Pool({ ...c.config, host: proxy.host, port: proxy.port, max: 1 })
      const evictions: EvictionEvent[] = []
      pool.guard.on('evict', (e) => evictions.push(e))
      const probes: boolean[] = []
      pool.guard.on('probe', (p) => probes.push(p.alive))
      try {
        await pool.query('SELECT 1')
        proxy.add('latency', { latencyMs })
        const { rows } = await pool.query('SELECT pg_sleep(6.5), 1 AS ok') // two probes: after 1 s and 6 s
        assert.equal(rows[0].ok, 1)
        assert.deepEqual(evictions, [])
        assert.ok(probes.length >= 1 && probes.every(Boolean), `probes: ${probes.join()}`)
      } finally {
        await pool.end()
        await proxy.stop()
      }
    })
  }

  it('a rejected attempt (wrong role) never reaches the pool as an error or a warning', async () => {
    const c = await get()
    const [a, b] = c.servers
    const pool = new Pool({ ...c.config, host: `${a.host},${b.host}`, guard: { targetSessionAttrs: 'standby' } })
    const errors: Error[] = []
    pool.on('error', (e) => errors.push(e))
    const warnings: Error[] = []
    const onWarning = (w: Error): void => void warnings.push(w)
    process.on('warning', onWarning)
    const { rows } = await pool.query('SELECT pg_is_in_recovery() AS standby')
    assert.equal(rows[0].standby, true)
    await new Promise((r) => setTimeout(r, 300)) // the rejected socket closes meanwhile: nothing may follow
    process.off('warning', onWarning)
    assert.deepEqual(errors.map((e) => e.message), [])
    assert.deepEqual(warnings.map((w) => w.message).filter((m) => m.includes('pg-pool-guard')), [])
    await pool.end()
  })

  it("a pool with targetSessionAttrs and minIdle that is never ended does not keep the process alive", async () => {
    const c = await get()
    const script = join(c.baseDir, 'never-ended.cjs')
    writeFileSync(script, `
      const { Pool } = require(${JSON.stringify(join(__dirname, '../../dist/index.js'))})
      const pool = new Pool({ ...${JSON.stringify(c.config)}, host: ${JSON.stringify(c.hosts)}, idleTimeoutMillis: 500,
        guard: { targetSessionAttrs: 'read-write', minIdle: 2 } })
      pool.query('SELECT 1').then(() => console.log('queried'))
    `)
    const started = Date.now()
    const r = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 20_000 })
    const took = Date.now() - started
    console.log(`# a never-ended pool (tsa + minIdle): the process exited by itself after ${took} ms`)
    assert.equal(r.signal, null, `killed after ${took} ms: the process did not exit by itself`)
    assert.match(r.stdout, /queried/)
  })
})
