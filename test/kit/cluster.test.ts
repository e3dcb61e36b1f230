/**
 * The test kit's cluster: with the system's PostgreSQL (Debian's postgresql-NN) instead of the embedded one,
 * and its orchestration (promote, rejoin, freeze) and coded errors with the default binaries.
 */
import assert from 'node:assert/strict'
import { existsSync, readdirSync } from 'node:fs'
import { describe, it } from 'node:test'
import { findBinaries } from '../../src/testing/binaries'
import { spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import pg from 'pg'
import { type Cluster, freePort, startCluster, sweepStaleClusters } from '../../src/testing/cluster'
import { kitTmpDir } from '../../src/testing/kit-dir'
import { isAlive } from '../../src/testing/process'
import { KitError, KitErrorCodes } from '../../src/testing/errors'

const system = existsSync('/usr/lib/postgresql') && readdirSync('/usr/lib/postgresql').some((v) => existsSync(`/usr/lib/postgresql/${v}/bin/postgres`))
const skip = system ? undefined : 'no system PostgreSQL under /usr/lib/postgresql (Debian package postgresql-NN)'
if (skip) console.log(`# SKIP test/kit/cluster.test.ts: ${skip}`)

describe('startCluster with system binaries', { skip }, () => {
  it("binaries: 'system' runs a primary and a streaming standby from /usr/lib/postgresql", async () => {
    const b = findBinaries('system')
    assert.equal(b.source, 'system')
    const c = await startCluster({ standby: true, binaries: 'system', primaryHost: '127.0.4.2', standbyHost: '127.0.4.3' })
    try {
      const v = await c.primary.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")
      assert.equal(Math.floor(Number(v.rows[0].v) / 10000), b.major)
      await c.primary.query('CREATE TABLE t (x int)')
      await c.caughtUp()
      assert.equal((await c.standby!.query("SELECT to_regclass('t') IS NOT NULL AS ok")).rows[0].ok, true)
    } finally {
      await c.stop()
    }
  })

  it('a missing binary directory is a coded error naming it', () => {
    assert.throws(() => findBinaries({ binDir: '/nope/bin' }), (e: Error & { code?: string }) => e.code === 'PGG_CONFIG_INVALID' && /no postgres binary in \/nope\/bin/.test(e.message))
  })
})

type Coded = Error & { code?: string }

describe('startCluster with the default binaries', () => {
  it('promote, split-brain, restartAsStandby, freeze/thaw; errors coded PGG_KIT_* naming host:port', async () => {
    const c = await startCluster({ standby: true, primaryHost: '127.0.4.4', standbyHost: '127.0.4.5' })
    try {
      const [a, b] = c.servers
      assert.equal(c.hosts, '127.0.4.4,127.0.4.5')
      await c.primary.query('CREATE TABLE t (x int)')
      await c.primary.query('INSERT INTO t VALUES (1)')
      await c.caughtUp()
      assert.equal((await b.query('SELECT count(*)::int AS n FROM t')).rows[0].n, 1)

      await c.promote()
      assert.equal(b.role, 'primary')
      assert.equal(a.role, 'primary', 'the old primary still runs: split-brain until the test ends it')
      await assert.rejects(c.promote(), (e: Coded) => e instanceof KitError && e.code === KitErrorCodes.NO_STANDBY && /^pg-pool-guard\/testing: promote\(\) needs a running standby/.test(e.message))

      await c.restartAsStandby(a, b)
      assert.equal(a.role, 'standby')
      await b.query('INSERT INTO t VALUES (2)')
      await c.caughtUp()
      assert.equal((await a.query('SELECT count(*)::int AS n FROM t')).rows[0].n, 2)

      b.freeze()
      assert.ok(b.processIds().length > 1)
      b.thaw()
      assert.equal((await b.query('SELECT 1 AS one')).rows[0].one, 1)

      await c.stopPrimary('kill')
      assert.throws(() => c.primary, (e: Coded) => e.code === KitErrorCodes.NO_PRIMARY && e.message.includes('127.0.4.5:'))
      await c.restart(b)
      assert.equal(c.primary, b)
    } finally {
      await c.stop()
    }
  })

  it('no free port is PGG_KIT_NO_FREE_PORT naming the addresses', async () => {
    // 192.0.2.1 (TEST-NET-1) is on no interface here: nothing can listen on it.
    await assert.rejects(freePort(['127.0.4.8', '192.0.2.1']), (e: Coded) => e.code === KitErrorCodes.NO_FREE_PORT && /127\.0\.4\.8, 192\.0\.2\.1/.test(e.message))
  })
})

describe('a run killed before its teardown', () => {
  it("sweepStaleClusters() stops a dead process's servers and deletes their data; live clusters are left alone", async () => {
    const live = await startCluster({ primaryHost: '127.0.24.20' })
    try {
      // A child starts a cluster, prints the postmaster's pid and its directory, and is killed (no teardown).
      const script = `
        const { startCluster } = require(${JSON.stringify(join(__dirname, '..', '..', 'src', 'testing', 'cluster'))})
        startCluster({ primaryHost: '127.0.24.21' }).then((c) => console.log(JSON.stringify({ pid: c.primary.pid, dir: c.baseDir })))`
      const child = spawn(process.execPath, ['--import', 'tsx', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
      const line = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => resolve(d.toString()))
        child.on('exit', (code) => reject(new Error(`child exited with ${code} before starting its cluster`)))
      })
      const { pid, dir } = JSON.parse(line) as { pid: number; dir: string }
      child.kill('SIGKILL')
      await new Promise((r) => child.once('exit', r))
      assert.ok(isAlive(pid), 'the killed run left its postmaster running')
      assert.ok(sweepStaleClusters() >= 1)
      assert.equal(existsSync(dir), false, 'its data is gone')
      const deadline = Date.now() + 10_000
      while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50)) // not our child: no exit event
      assert.equal(isAlive(pid), false, 'its postmaster stopped')
      assert.equal((await live.primary.query<{ n: number }>('SELECT 1 AS n')).rows[0].n, 1, 'a live cluster is untouched')
    } finally {
      await live.stop()
    }
  })
})

describe('clusters start from one initdb template', () => {
  it('each primary has its own superuser password over TCP, and its own data', async () => {
    const [a, b] = await Promise.all([
      startCluster({ primaryHost: '127.0.4.10' }),
      startCluster({ primaryHost: '127.0.4.11', password: "it's \"quoted\"" }),
    ])
    try {
      assert.notEqual(a.baseDir, b.baseDir)
      assert.equal(dirname(a.baseDir), kitTmpDir())
      const login = async (c: Cluster, password: string): Promise<string> => {
        const client = new pg.Client({ ...c.config, password })
        try {
          await client.connect()
          return 'ok'
        } catch (err) {
          return (err as { code?: string }).code ?? (err as Error).message
        } finally {
          await client.end().catch(() => {})
        }
      }
      assert.equal(await login(a, a.password), 'ok')
      assert.equal(await login(b, b.password), 'ok')
      assert.equal(await login(a, b.password), '28P01', "another cluster's password is refused: the template has no shared one")
      await a.primary.query('CREATE TABLE only_in_a (x int)')
      assert.equal((await b.primary.query("SELECT to_regclass('only_in_a') IS NULL AS absent")).rows[0].absent, true)
    } finally {
      await Promise.all([a.stop(), b.stop()])
    }
  })

  it('a primary killed (SIGKILL) right after start and restarted still takes its password over TCP', async () => {
    // The password is set after start on a server with synchronous_commit off: killed before the WAL
    // writer's next round (200 ms), crash recovery used to bring back the template's password-less role.
    const c = await startCluster({ primaryHost: '127.0.33.2' })
    try {
      await c.stopPrimary('kill')
      await c.restart(c.servers[0])
      const client = new pg.Client(c.config)
      await client.connect()
      try {
        assert.equal((await client.query<{ n: number }>('SELECT 1 AS n')).rows[0].n, 1)
      } finally {
        await client.end()
      }
    } finally {
      await c.stop()
    }
  })
})
