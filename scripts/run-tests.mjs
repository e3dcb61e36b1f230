// Runs the test tiers in order with node:test (TypeScript through tsx). The kernel-fault, failover and kit
// tests measure timings and look at the whole machine (listening sockets, iptables rules), so they run one
// file at a time; the unit tier (pure) and the ecosystem tier (each file on its own cluster and addresses,
// only generous timings) run two files at a time.
//   node scripts/run-tests.mjs                 all tiers
//   node scripts/run-tests.mjs test/unit       one tier (or any files/directories), one file at a time
import { spawnSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const tiers = [['test/unit', 2], ['test/pg', 1], ['test/kernel', 1], ['test/kit', 1], ['test/ecosystem', 2]]
const args = process.argv.slice(2)

function collect(path) {
  const abs = join(root, path)
  if (statSync(abs).isFile()) return [path]
  return readdirSync(abs)
    .filter((f) => f.endsWith('.test.ts'))
    .sort()
    .map((f) => join(path, f))
}

const runs = args.length
  ? [{ files: args.flatMap(collect), concurrency: 1 }]
  : tiers
      .filter(([t]) => { try { return statSync(join(root, t)).isDirectory() } catch { return false } })
      .map(([t, concurrency]) => ({ files: collect(t), concurrency }))
const started = Date.now()
let status = 0
let count = 0
for (const { files, concurrency } of runs) {
  count += files.length
  const res = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--test', '--test-force-exit', `--test-concurrency=${concurrency}`, '--test-timeout=300000', '--test-reporter=spec', ...files],
    { cwd: root, stdio: 'inherit' }
  )
  if (res.status !== 0) status = res.status ?? 1
}
console.log(`\n${count} test files in ${((Date.now() - started) / 1000).toFixed(1)} s`)
process.exit(status)
