// Runs every benchmark in this directory and writes their output to benchmarks/README.md, with the
// command and the machine they were measured on.  npm run bench   (or: node benchmarks/run-all.mjs --smoke)
import { execFileSync, spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const smoke = process.argv.includes('--smoke')
const only = process.argv.slice(2).filter((a) => !a.startsWith('--'))
const benches = [
  ['overhead.ts', 'Overhead: throughput and latency vs pg.Pool'],
  ['profile.ts', "CPU profile: the package's own frames on SELECT 1, beside pg.Pool"],
  ['checkout.ts', 'Checkout check: CPU per checkout vs pg.Pool'],
  ['connect.ts', 'New connections and address checks: what knowing the server costs'],
  ['memory.ts', 'Memory per pooled connection'],
  ['detection.ts', 'Blackhole detection'],
  ['failover.ts', 'Failover, split-brain and packet loss'],
  ['guard-pass.ts', 'Guard pass cost vs sockets on the host'],
  ['soak.ts', 'Soak: a fault every 30 s for 10 minutes, beside pg.Pool'],
  ['early-warning.ts', 'Early warning: a slow, lossy host, routing and dwell time, beside pg.Pool'],
].filter(([f]) => only.length === 0 || only.some((o) => f.startsWith(o)))

/** Runs one benchmark script; resolves with its stdout and how long it took. */
function run(file) {
  const started = Date.now()
  process.stderr.write(`running ${file}${smoke ? ' --smoke' : ''} ...\n`)
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', join(here, file), ...(smoke ? ['--smoke'] : [])], {
      cwd: join(here, '..'),
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let stdout = ''
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d))
    child.on('close', (status) => resolve({ file, stdout, status, seconds: (Date.now() - started) / 1000 }))
  })
}

// Measuring runs go one at a time (they measure CPU and latency). Smoke runs (is each script still
// runnable?) go three at a time: each benchmark has loopback addresses of its own, and nothing is timed.
const concurrency = smoke ? 3 : 1
const results = new Array(benches.length)
let next = 0
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (next < benches.length) {
      const i = next++
      results[i] = await run(benches[i][0])
    }
  })
)
const sections = []
for (const [i, [file, title]] of benches.entries()) {
  const res = results[i]
  process.stdout.write(res.stdout)
  if (res.status !== 0) {
    console.error(`${file} failed with exit code ${res.status}`)
    process.exit(1)
  }
  sections.push(`## ${title}\n\n\`node --import tsx benchmarks/${file}\` (${res.seconds.toFixed(0)} s)\n\n${res.stdout.trim()}\n`)
}

const kernel = execFileSync('uname', ['-sr'], { encoding: 'utf8' }).trim()
const machine = `${cpus().length} x ${cpus()[0].model}, ${Math.round(totalmem() / 2 ** 30)} GiB, ${kernel}, Node ${process.version}`
if (!smoke && only.length === 0) {
  const intro = readFileSync(join(here, 'INTRO.md'), 'utf8').trim()
  writeFileSync(
    join(here, 'README.md'),
    `${intro}\n\nMeasured ${new Date().toISOString().slice(0, 10)} with \`npm run bench\` on: ${machine}.\n\n${sections.join('\n')}`
  )
  process.stderr.write('wrote benchmarks/README.md\n')
} else if (!smoke) {
  // Some benchmarks only (node benchmarks/run-all.mjs overhead): replace their sections, note when.
  let readme = readFileSync(join(here, 'README.md'), 'utf8')
  for (const section of sections) {
    const title = section.split('\n')[0]
    const start = readme.indexOf(title)
    if (start === -1) continue
    const next = readme.indexOf('\n## ', start + title.length)
    const stamp = `(re-measured ${new Date().toISOString().slice(0, 10)} on: ${machine})\n\n`
    readme = readme.slice(0, start) + section.replace('\n\n', `\n\n${stamp}`) + (next === -1 ? '' : readme.slice(next))
  }
  writeFileSync(join(here, 'README.md'), readme)
  process.stderr.write(`updated ${sections.length} section(s) of benchmarks/README.md\n`)
}
