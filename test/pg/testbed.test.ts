/** The test bed itself: a primary and a streaming hot standby on their own loopback addresses, promote, rejoin. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { until, useCluster } from '../helpers'

const cluster = useCluster({ standby: true, primaryHost: '127.0.0.9', standbyHost: '127.0.0.10' })

describe('test bed: primary + streaming standby', () => {
  it('streams, promotes, and re-joins a diverged old primary as a standby', async () => {
    const c = cluster.get()
    const [a, b] = c.servers
    assert.equal(c.primary, a)
    assert.equal(c.standby, b)
    assert.equal(a.port, b.port, 'one port, two addresses')
    assert.equal(c.hosts, '127.0.0.9,127.0.0.10')

    await a.query('CREATE TABLE t (n int)')
    await a.query('INSERT INTO t VALUES (1)')
    await until(async () => (await b.query('SELECT count(*)::int AS n FROM t').catch(() => ({ rows: [{ n: 0 }] }))).rows[0].n === 1, 'the standby replays the insert')
    assert.equal((await b.query('SELECT pg_is_in_recovery() AS r')).rows[0].r, true)
    await assert.rejects(b.query('INSERT INTO t VALUES (2)'), /read-only transaction/)

    await c.promote()
    assert.equal((await b.query('SELECT pg_is_in_recovery() AS r')).rows[0].r, false)
    // split-brain: both accept writes now
    await a.query('INSERT INTO t VALUES (100)')
    await b.query('INSERT INTO t VALUES (200)')
    assert.deepEqual(c.servers.map((s) => s.role), ['primary', 'primary'])

    await c.restartAsStandby(a, b)
    assert.equal(a.role, 'standby')
    assert.equal(c.primary, b)
    const rows = (await a.query('SELECT n FROM t ORDER BY n')).rows.map((r) => r.n)
    assert.deepEqual(rows, [1, 200], 'the old primary now follows the new one; its split-brain write is gone')
    assert.equal((await a.query('SELECT pg_is_in_recovery() AS r')).rows[0].r, true)
  })
})
