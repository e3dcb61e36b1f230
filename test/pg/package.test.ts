/**
 * The package as users get it: the built dist/ through the exports map, from ESM and CommonJS, with types,
 * and the one-line-swap examples run against a real server.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { useCluster } from '../helpers'

const root = join(__dirname, '..', '..')
const cluster = useCluster({ primaryHost: '127.0.0.8' })

function node(args: string[], env: Record<string, string> = {}): string {
  return execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8', env: { ...process.env, ...env } })
}

describe('package', () => {
  it('import and require resolve to the same API, with types, for . and ./testing', () => {
    const cjs = node(['-e', "const m = require('pg-pool-guard'); const t = require('pg-pool-guard/testing'); console.log(JSON.stringify([Object.keys(m).sort(), Object.keys(t).sort()]))"])
    const esm = node(['--input-type=module', '-e', "import * as m from 'pg-pool-guard'; import * as t from 'pg-pool-guard/testing'; console.log(JSON.stringify([Object.keys(m).filter(k => k !== '__esModule' && k !== 'default').sort(), Object.keys(t).filter(k => k !== '__esModule' && k !== 'default').sort()]))"])
    assert.deepEqual(JSON.parse(esm), JSON.parse(cjs))
    const [main, testing] = JSON.parse(cjs) as string[][]
    for (const name of ['Pool', 'guard', 'ErrorCodes', 'PoolGuardError', 'GUARD_DEFAULTS']) assert.ok(main.includes(name), name)
    assert.ok(testing.includes('startCluster'))
    assert.ok(existsSync(join(root, 'dist', 'index.d.ts')) && existsSync(join(root, 'dist', 'testing', 'index.d.ts')))
  })

  it('the one-line swap example works from ESM and CommonJS', () => {
    const env = { DATABASE_URL: cluster.get().primary.connectionString }
    const esm = node([join('examples', 'one-line-swap', 'app.mjs')], env)
    assert.match(esm, /query ok: two=2/)
    assert.match(esm, /keepalive 5000\/1000\/5, user timeout 30000 ms \(ffi\)/)
    const cjs = node([join('examples', 'one-line-swap', 'app.cjs')], env)
    assert.match(cjs, /query ok: db=postgres, guarded sockets=1/)
    assert.ok(!(esm + cjs).includes(cluster.get().password), 'no password in output')
  })
})
