// Runs the test tiers in order with node:test (TypeScript through tsx). The kernel-fault, failover and kit
// tests measure timings and look at the whole machine (listening sockets, iptables rules), so they run one
// file at a time; the unit tier (pure) and the ecosystem tier (each file on its own cluster and addresses,
// only generous timings) run two files at a time.
//   node scripts/run-tests.mjs                 all tiers
//   node scripts/run-tests.mjs test/unit       one tier (or any files/directories), one file at a time
import { spawnSync } from 'node:child_process'
import { appendFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
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

// On the extra Node lines of .ci/run (PGG_TEST_LINE=secondary) the files that test the machine rather than
// the Node line — benchmark smoke runs, a fleet of app processes in network namespaces scraped by a real
// Prometheus — run once, on the machine's own Node, to keep four lines within CI's time; said, never silent.
const MACHINE_ONLY = new Set(['test/kit/bench.test.ts', 'test/kernel/fleet.test.ts', 'test/kernel/fleet-vip.test.ts'])
const secondary = process.env.PGG_TEST_LINE === 'secondary'
const keep = (files) => {
  if (!secondary) return files
  for (const f of files.filter((x) => MACHINE_ONLY.has(x))) console.log(`# SKIP ${f}: runs on the machine's Node line only (PGG_TEST_LINE=secondary)`)
  return files.filter((f) => !MACHINE_ONLY.has(f))
}
const runs = args.length
  ? [{ files: keep(args.flatMap(collect)), concurrency: 1 }]
  : tiers
      .filter(([t]) => { try { return statSync(join(root, t)).isDirectory() } catch { return false } })
      .map(([t, concurrency]) => ({ files: keep(collect(t)), concurrency }))
// Failed tests and per-file times, collected across tiers by scripts/recap-reporter.mjs and printed at
// the end; PGG_FAILURES_FILE (set by .ci/run) also gets the failures, to print after every Node line.
const recapDir = mkdtempSync(join(tmpdir(), 'pgg-failures-'))
const started = Date.now()
let status = 0
let count = 0
const tierTimes = []
for (const [i, { files, concurrency }] of runs.entries()) {
  count += files.length
  const tierStarted = Date.now()
  const res = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--test', '--test-force-exit', `--test-concurrency=${concurrency}`, '--test-timeout=300000', '--test-reporter=spec', '--test-reporter-destination=stdout',
      `--test-reporter=${join(root, 'scripts', 'recap-reporter.mjs')}`, `--test-reporter-destination=${join(recapDir, `${i}.txt`)}`, ...files],
    { cwd: root, stdio: 'inherit' }
  )
  if (res.status !== 0) status = res.status ?? 1
  tierTimes.push(`${runs.length > 1 ? tiers[i][0] : 'files'} ${((Date.now() - tierStarted) / 1000).toFixed(0)} s`)
}
const lines = readdirSync(recapDir).flatMap((f) => readFileSync(join(recapDir, f), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)))
rmSync(recapDir, { recursive: true, force: true })
const fileMs = new Map()
for (const l of lines) if (l.ms !== undefined) fileMs.set(l.file, Math.max(l.ms, fileMs.get(l.file) ?? 0))
const slowest = [...fileMs].map(([file, ms]) => ({ file, ms })).sort((a, b) => b.ms - a.ms).slice(0, 10)
if (slowest.length > 1) console.log(`\nslowest files: ${slowest.map((l) => `${l.file} ${(l.ms / 1000).toFixed(0)} s`).join(', ')}`)
const failed = lines.filter((l) => l.failed !== undefined).map((l) => `✖ ${l.file}: ${l.failed}\n${l.message.replace(/^/gm, '    ')}\n`).join('')
if (failed) {
  console.log(`\n== failed tests (node ${process.version})\n${failed}`)
  if (process.env.PGG_FAILURES_FILE) appendFileSync(process.env.PGG_FAILURES_FILE, `-- node ${process.version}\n${failed}`)
}
console.log(`\n${count} test files in ${((Date.now() - started) / 1000).toFixed(1)} s (${tierTimes.join(', ')})`)
process.exit(status)
