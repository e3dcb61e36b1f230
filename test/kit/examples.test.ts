/** The failover-test examples an application would copy (node:test and vitest) run and pass, under 40 lines. */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'

const root = join(__dirname, '..', '..')
const dir = join(root, 'examples', 'failover-test')

describe('examples/failover-test', () => {
  for (const [file, cmd] of [
    ['orders.node.test.mjs', [process.execPath, '--test', join(dir, 'orders.node.test.mjs')]],
    ['orders.vitest.test.mjs', [process.execPath, join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'run', join(dir, 'orders.vitest.test.mjs')]],
  ] as const) {
    it(`${file} passes and stays under 40 lines`, () => {
      assert.ok(readFileSync(join(dir, file), 'utf8').trimEnd().split('\n').length < 40)
      // A child `node --test` inside our own test run would report to us instead of printing: unset the link.
      const { NODE_TEST_CONTEXT: _, ...env } = process.env
      const res = spawnSync(cmd[0], cmd.slice(1), { cwd: root, encoding: 'utf8', timeout: 120_000, env: { ...env, NO_COLOR: '1' } })
      assert.equal(res.status, 0, `${file} failed:\n${res.stdout}\n${res.stderr}`)
      assert.match(res.stdout, /pass 1|1 passed/)
    })
  }
})
