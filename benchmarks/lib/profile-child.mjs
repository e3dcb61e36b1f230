// The measured process of benchmarks/profile.ts: loads the built package (dist/, as users run it; no tsx in
// this process) and pg, makes one pool (pg-pool-guard's Pool or plain pg.Pool, max = workers), warms it up,
// then runs `workers` loops of pool.query('SELECT 1') for `seconds` under the V8 CPU profiler.
// Both kinds load the package, so that the pg.Pool run shows what merely loading it costs (nothing).
//
// Its spec comes in the environment (PGG_PROFILE_SPEC, JSON: the pool config holds a password); one JSON line
// goes out on stdout: queries, window, CPU, the guard's passes.
//
// profiler 'inspector': Profiler.start/stop through node:inspector around the measured window only (the profile
// is written to spec.out). profiler 'cpu-prof': node was started with --cpu-prof (the parent passes the flags);
// the profile covers the whole process and is cut to the window (windowUs, the same monotonic clock) when parsed.
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const spec = JSON.parse(process.env.PGG_PROFILE_SPEC ?? '{}')
const pg = require('pg')
const { Pool } = require('../../dist/index.js')

const pool = spec.pool === 'guarded' ? new Pool({ ...spec.config, max: spec.workers }) : new pg.Pool({ ...spec.config, max: spec.workers })

/** The workload: `workers` loops of SELECT 1 until `ms` have passed; the same function warms up and measures. */
async function load(ms) {
  const until = performance.now() + ms
  let queries = 0
  await Promise.all(
    Array.from({ length: spec.workers }, async () => {
      while (performance.now() < until) {
        await pool.query('SELECT 1')
        queries++
      }
    })
  )
  return queries
}

await load(spec.warmupMs)

let session
if (spec.profiler === 'inspector') {
  session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.setSamplingInterval', { interval: spec.intervalUs })
  await session.post('Profiler.start')
}
const passes0 = pool.guard ? pool.guard.stats().passes : null
const hr0 = process.hrtime.bigint()
const cpu0 = process.cpuUsage()
const queries = await load(spec.seconds * 1000)
const cpu = process.cpuUsage(cpu0)
const hr1 = process.hrtime.bigint()
const passes = pool.guard ? pool.guard.stats().passes - passes0 : null
if (session) {
  const { profile } = await session.post('Profiler.stop')
  session.disconnect()
  writeFileSync(spec.out, JSON.stringify(profile))
}
await pool.end()
process.stdout.write(
  `${JSON.stringify({
    queries,
    ms: Number(hr1 - hr0) / 1e6,
    cpuUs: cpu.user + cpu.system,
    passes,
    windowUs: [Number(hr0 / 1000n), Number(hr1 / 1000n)],
  })}\n`
)
