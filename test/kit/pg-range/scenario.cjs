// A user's program, run by test/kit/pg-range.test.ts inside a throwaway project whose node_modules holds
// one pg (8.11.0 or the newest) and the built pg-pool-guard. It uses only the public API and the kit, and
// prints one JSON line of what it saw; the test asserts on it. argv: primaryHost standbyHost.
'use strict'
const { dirname, join } = require('node:path')
const { readFileSync, realpathSync } = require('node:fs')
const pg = require('pg')
const { Pool, ConnectionEvictedError } = require('pg-pool-guard')
const { startCluster, blackhole, kernelFaultsUnavailable } = require('pg-pool-guard/testing')

const [primaryHost, standbyHost] = process.argv.slice(2)
const out = { uncaught: [], steps: [] }
const step = (name) => { out.steps.push(name); console.error(`# step: ${name}`) }
let cluster
// The test's timeout sends SIGTERM: stop the servers (they are our children's children) before going.
process.on('SIGTERM', () => { console.log(JSON.stringify({ ...out, failed: `timed out after steps ${out.steps.join(', ')}` })); (cluster ? cluster.stop() : Promise.resolve()).finally(() => process.exit(1)) })
process.on('uncaughtException', (e) => out.uncaught.push(String(e)))
process.on('unhandledRejection', (e) => out.uncaught.push(String(e)))

function versionOf(name, from) {
  const entry = require.resolve(name, { paths: [from] })
  let dir = dirname(entry)
  while (true) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
      if (pkg.name === name) return { version: pkg.version, dir: realpathSync(dir) }
    } catch {}
    dir = dirname(dir)
  }
}

/** Awaits `promise` (at most 15 s) and returns { ms, code, evicted } of its rejection, or ok: true. */
async function timed(promise) {
  const started = Date.now()
  let timer
  const bound = new Promise((_, reject) => { timer = setTimeout(() => reject(Object.assign(new Error('no outcome within 15 s'), { code: 'SCENARIO_TIMEOUT' })), 15_000) })
  try {
    await Promise.race([promise, bound])
    return { ok: true, ms: Date.now() - started }
  } catch (e) {
    return { ok: false, ms: Date.now() - started, code: e.code, evicted: e instanceof ConnectionEvictedError, message: e.message }
  } finally {
    clearTimeout(timer)
  }
}

async function main() {
  const pgAt = versionOf('pg', __dirname)
  out.pg = pgAt.version
  out.pgDir = pgAt.dir
  const pgPool = versionOf('pg-pool', pgAt.dir)
  out.pgPool = pgPool.version
  out.pgPoolDir = pgPool.dir
  out.pgProtocol = versionOf('pg-protocol', pgAt.dir).version
  console.error(`# pg ${out.pg} (${out.pgDir}), pg-pool ${out.pgPool}, pg-protocol ${out.pgProtocol}`)

  step('start the cluster')
  const c = cluster = await startCluster({ standby: true, primaryHost, standbyHost })
  try {
    // 1. Queries, and the snapshot's backend pid is the server's pid for that very socket.
    step('queries')
    const pool = new Pool({ ...c.config, max: 3 })
    out.instanceOfPgPool = pool instanceof pg.Pool
    out.sum = (await Promise.all([1, 2, 3].map((n) => pool.query('SELECT $1::int AS n', [n])))).reduce((a, r) => a + r.rows[0].n, 0)
    step('pids')
    const client = await pool.connect()
    const me = (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid
    const row = pool.guard.snapshot().find((r) => r.state === 'in-use')
    const admin = new pg.Client(c.config)
    await admin.connect()
    const seen = await admin.query('SELECT pid FROM pg_stat_activity WHERE client_addr = $1 AND client_port = $2', [row.localAddress, row.localPort])
    out.pids = { snapshot: row.backendPid, session: me, pgStatActivity: seen.rows.map((r) => r.pid) }

    // 2. The backend killed under a query: the caller gets the server's error, the process lives on.
    step('kill a backend')
    const sleeping = timed(client.query('SELECT pg_sleep(30)'))
    for (let i = 0; i < 250; i++) { // until the server runs the sleep (no event tells us); then kill it
      const k = await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND query LIKE 'SELECT pg_sleep%'", [me])
      if (k.rowCount > 0) break
      await new Promise((res) => setTimeout(res, 20))
    }
    out.killed = await sleeping
    client.release(true)
    step('after the kill')
    out.afterKill = (await pool.query('SELECT 7 AS n')).rows[0].n
    await admin.end()

    // 3. A frozen server (SIGSTOP: the kernel still ACKs): the coded eviction within seconds.
    step('freeze')
    await pool.query('SELECT 1')
    c.primary.freeze()
    out.frozen = await timed(pool.query('SELECT 1'))
    c.primary.thaw()
    step('after the thaw')
    out.afterFreeze = (await pool.query('SELECT 8 AS n')).rows[0].n

    // 4. As root: a blackholed host (iptables, tagged, removed here).
    out.blackholeSkipped = kernelFaultsUnavailable()
    if (!out.blackholeSkipped) {
      step('blackhole')
      await pool.query('SELECT 1')
      const fault = await blackhole(c.primary.host, { port: c.port })
      try {
        out.blackholed = await timed(pool.query('SELECT 1'))
      } finally {
        await fault.remove()
      }
      step('after the blackhole')
      out.afterBlackhole = (await pool.query('SELECT 9 AS n')).rows[0].n
    }
    await pool.end()

    // 5. Two hosts, the standby listed first: read-write lands on the primary.
    step('read-write')
    const rw = new Pool({ ...c.config, host: `${standbyHost},${primaryHost}`, guard: { targetSessionAttrs: 'read-write' } })
    const r = await rw.query('SELECT pg_is_in_recovery() AS standby, host(inet_server_addr()) AS addr')
    out.readWrite = { standby: r.rows[0].standby, addr: r.rows[0].addr, snapshotRole: rw.guard.snapshot()[0].role }
    await rw.end()
  } finally {
    await c.stop()
  }
}

main().then(
  () => { console.log(JSON.stringify(out)) },
  (e) => { out.failed = e.stack || String(e); console.log(JSON.stringify(out)); process.exitCode = 1 }
)
