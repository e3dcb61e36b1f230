/** The benchmark scripts stay runnable: each runs in its tiny smoke mode (no timing is asserted). */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { describe, it } from 'node:test'

const root = join(__dirname, '..', '..')

describe('benchmarks (smoke mode)', () => {
  it('every benchmark script runs and prints its tables', () => {
    const { NODE_TEST_CONTEXT: _, ...env } = process.env
    const res = spawnSync(process.execPath, [join(root, 'benchmarks', 'run-all.mjs'), '--smoke'], { cwd: root, encoding: 'utf8', timeout: 600_000, env })
    assert.equal(res.status, 0, `run-all --smoke failed:\n${res.stdout.slice(-3000)}\n${res.stderr.slice(-3000)}`)
    for (const heading of ['| work | pool | per second', '| pool | heap per connection', 'Failover', 'Split-brain', 'Guard pass cost']) {
      assert.ok(res.stdout.includes(heading), `missing "${heading}"`)
    }
    if (!res.stdout.includes('skipped:')) {
      assert.ok(res.stdout.includes('Blackhole (iptables DROP) detection'))
      assert.ok(res.stdout.includes('| writers | pool | healthy: writes/s'), 'the early-warning table')
    }
  })
})
