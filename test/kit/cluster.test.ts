/** The test kit's cluster with the system's PostgreSQL (Debian's postgresql-NN) instead of the embedded one. */
import assert from 'node:assert/strict'
import { existsSync, readdirSync } from 'node:fs'
import { describe, it } from 'node:test'
import { findBinaries } from '../../src/testing/binaries'
import { startCluster } from '../../src/testing/cluster'

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
