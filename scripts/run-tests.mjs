// Runs the test tiers in order with node:test (TypeScript through tsx), one file at a time: the kernel-fault
// and failover tests measure timings and share loopback addresses, so they must not overlap.
//   node scripts/run-tests.mjs                 all tiers
//   node scripts/run-tests.mjs test/unit       one tier (or any files/directories)
import { spawnSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const tiers = ['test/unit', 'test/pg', 'test/kernel', 'test/kit', 'test/ecosystem']
const args = process.argv.slice(2)

function collect(path) {
  const abs = join(root, path)
  if (statSync(abs).isFile()) return [path]
  return readdirSync(abs)
    .filter((f) => f.endsWith('.test.ts'))
    .sort()
    .map((f) => join(path, f))
}

const files = (args.length ? args : tiers.filter((t) => { try { return statSync(join(root, t)).isDirectory() } catch { return false } }))
  .flatMap(collect)
const started = Date.now()
const res = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-force-exit', '--test-concurrency=1', '--test-timeout=300000', '--test-reporter=spec', ...files],
  { cwd: root, stdio: 'inherit' }
)
console.log(`\n${files.length} test files in ${((Date.now() - started) / 1000).toFixed(1)} s`)
process.exit(res.status ?? 1)
