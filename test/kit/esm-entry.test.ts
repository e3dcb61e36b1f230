/**
 * The ESM entry points as the running Node sees them: exactly the CommonJS module's export names plus
 * `default` (the CommonJS module itself), and the same objects. Guards against `export *` passing on
 * Node 23+'s `'module.exports'` key, and against an export added to src/index.ts but not re-exported.
 * No PostgreSQL needed; runs under whichever Node runs the suite (.ci/run runs it under each).
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'

const dist = join(__dirname, '..', '..', 'dist')

/** Imports `mjs` and requires `js` in a fresh process of this Node; returns both views of the module. */
function views(mjs: string, js: string): { esm: string[]; cjs: string[]; defaultIsCjs: boolean; same: string[] } {
  const script = `
    import { createRequire } from 'node:module'
    const esm = await import(${JSON.stringify(pathToFileURL(mjs).href)})
    const cjs = createRequire(import.meta.url)(${JSON.stringify(js)})
    const same = Object.keys(cjs).filter((k) => k in esm && esm[k] === cjs[k])
    console.log(JSON.stringify({ esm: Object.keys(esm), cjs: Object.keys(cjs), defaultIsCjs: esm.default === cjs, same }))`
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }))
}

describe(`ESM entry points under Node ${process.version}`, () => {
  for (const entry of ['index', 'testing/index']) {
    it(`dist/${entry}.mjs exports the CommonJS keys and default, nothing else`, () => {
      const mjs = join(dist, `${entry}.mjs`)
      const js = join(dist, `${entry}.js`)
      assert.ok(existsSync(mjs) && existsSync(js), `${mjs} missing: run node scripts/build.mjs first`)
      const v = views(mjs, js)
      const expected = v.cjs.filter((k) => k !== '__esModule')
      assert.ok(expected.length > 0, 'the CommonJS module has exports')
      assert.deepEqual([...v.esm].sort(), [...expected, 'default'].sort())
      assert.deepEqual([...v.same].sort(), [...expected].sort(), 'each named export is the CommonJS object itself')
      assert.ok(v.defaultIsCjs, 'default is the CommonJS module')
    })
  }
})

describe('a drop-in for the whole pg module', () => {
  it("every export of pg's module is one of ours, the same object except the guarded Pool and Client", () => {
    const script = `
      import pg from 'pg'
      import pgg from ${JSON.stringify(pathToFileURL(join(dist, 'index.mjs')).href)}
      import * as named from ${JSON.stringify(pathToFileURL(join(dist, 'index.mjs')).href)}
      const keys = Object.keys(pg).filter((k) => !k.startsWith('_'))
      const out = {}
      for (const k of keys) out[k] = k in pgg && named[k] === pgg[k] ? (pgg[k] === pg[k] ? 'same' : 'ours') : 'missing'
      out.clientIsPgClient = new pgg.Client({ host: '127.0.0.1' }) instanceof pg.Client
      out.poolIsPgPool = new pgg.Pool({ host: '127.0.0.1' }) instanceof pg.Pool
      console.log(JSON.stringify(out))
      process.exit(0)`
    const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', cwd: join(dist, '..') }))
    assert.equal(out.Pool, 'ours')
    assert.equal(out.Client, 'ours')
    assert.equal(out.clientIsPgClient, true, 'the guarded Client is a pg.Client')
    assert.equal(out.poolIsPgPool, true, 'the guarded Pool is a pg.Pool')
    for (const k of ['types', 'defaults', 'Connection', 'Query', 'DatabaseError', 'Result', 'TypeOverrides', 'escapeIdentifier', 'escapeLiteral', 'utils']) {
      assert.equal(out[k], 'same', `${k}: ${out[k]}`)
    }
    const missing = Object.keys(out).filter((k) => out[k] === 'missing')
    assert.deepEqual(missing, [], 'nothing pg exports is missing')
  })
})
