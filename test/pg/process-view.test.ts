/** The process-wide view: sockets this process holds to PostgreSQL that no guarded pool knows. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import pg from 'pg'
import { Pool } from '../../src/index'
import { useCluster } from '../helpers'

const cluster = useCluster({ primaryHost: '127.0.0.27' })

describe('foreign database sockets', () => {
  it('a second, unguarded pool and a leaked client are reported; the guarded pool\'s own sockets are not', async () => {
    const c = cluster.get()
    const guarded = new Pool({ ...c.config, guard: { procScanIntervalMs: 1 } })
    await guarded.query('SELECT 1')
    const other = new pg.Pool(c.config)
    await Promise.all([other.query('SELECT 1'), other.query('SELECT 1')])
    const leaked = new pg.Client(c.config)
    await leaked.connect()

    guarded.guard.check()
    const foreign = guarded.guard.foreignSockets()
    const mine = new Set(guarded.guard.snapshot().map((r) => r.localPort))
    assert.equal(foreign.length, 3, JSON.stringify(foreign))
    for (const f of foreign) {
      assert.equal(f.remoteAddress, c.primary.host)
      assert.equal(f.remotePort, c.port)
      assert.equal(mine.has(f.localPort), false)
    }
    await leaked.end()
    await other.end()
    await guarded.end()
  })
})
