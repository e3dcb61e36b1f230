/**
 * The fleet kit's edges (issue 21), fast: bad arguments are ConfigErrors, a machine where namespaces cannot
 * be made gets a coded KitError (and `demo --fleet` a one-line message and exit 1), and the sweep at the next
 * start removes what a killed run left — its namespaces, the processes still inside them, its link in the
 * root namespace and its working directory — while leaving a live run's alone (root only; skipped with the
 * reason otherwise). The fleet itself runs in test/kernel/fleet.test.ts and fleet-vip.test.ts.
 */
import assert from 'node:assert/strict'
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { ConfigError } from '../../src/errors'
import { KitErrorCodes } from '../../src/testing/errors'
import { fleetUnavailable, startFleet, sweepStaleFleets } from '../../src/testing/fleet'
import { kitTmpDir } from '../../src/testing/kit-dir'
import { isAlive } from '../../src/testing/process'

const root = join(__dirname, '..', '..')

async function asIfNotRoot<T>(fn: () => Promise<T>): Promise<T> {
  const saved = process.env.PGG_UNPRIVILEGED
  process.env.PGG_UNPRIVILEGED = '1'
  try {
    return await fn()
  } finally {
    if (saved === undefined) delete process.env.PGG_UNPRIVILEGED
    else process.env.PGG_UNPRIVILEGED = saved
  }
}

/** A pid that is certainly not running now: a child that has exited. */
async function deadPid(): Promise<number> {
  const c = spawn('true')
  await once(c, 'exit')
  assert.ok(!isAlive(c.pid!))
  return c.pid!
}

describe('fleet kit', () => {
  it('bad arguments are ConfigErrors; no namespaces here is PGG_KIT_NETNS_UNAVAILABLE', async () => {
    await assert.rejects(startFleet({ zones: [] }), ConfigError)
    await assert.rejects(startFleet({ zones: ['a', 'a'] }), ConfigError)
    await assert.rejects(startFleet({ instancesPerZone: 0 }), ConfigError)
    await assert.rejects(startFleet({ zones: ['a', 'b'], instancesPerZone: 51 }), ConfigError)
    await asIfNotRoot(async () => {
      assert.match(fleetUnavailable() ?? '', /PGG_UNPRIVILEGED=1/)
      await assert.rejects(startFleet(), (err: Error & { code?: string }) => {
        assert.equal(err.code, KitErrorCodes.NETNS_UNAVAILABLE)
        assert.match(err.message, /cannot build a fleet: PGG_UNPRIVILEGED=1 asks to run as if not root/)
        return true
      })
    })
  })

  it('demo --fleet without root: one line naming why, exit 1', () => {
    const res = spawnSync(process.execPath, [join(root, 'dist', 'cli', 'main.js'), 'demo', '--fleet'], {
      cwd: root, encoding: 'utf8', timeout: 30_000, env: { ...process.env, PGG_UNPRIVILEGED: '1' },
    })
    assert.equal(res.status, 1, res.stderr)
    assert.equal(res.stderr, 'pg-pool-guard: demo --fleet builds network namespaces and needs root: PGG_UNPRIVILEGED=1 asks to run as if not root [PGG_CLI_FAILED]\n')
  })

  const skip = fleetUnavailable() ?? undefined
  if (skip) console.log(`# SKIP test/kit/fleet-kit.test.ts (sweep): ${skip}`)

  it("the sweep removes a killed run's namespaces, their processes, its root link and its directory; a live run's stay", { skip }, async () => {
    const dead = await deadPid()
    const ns = `pgg-${dead}-c`
    const live = `pgg-${process.pid}-sweeptest`
    const link = `pgg-${dead}-r`
    const dir = join(kitTmpDir(), `pgg-${dead}-fleet-sweeptest`)
    const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8' })
    try {
      ip('netns', 'add', ns)
      ip('netns', 'add', live)
      ip('link', 'add', link, 'type', 'veth', 'peer', 'name', 'pgg-peer', 'netns', ns)
      mkdirSync(dir)
      // What a crashed run leaves running inside: here a sleep, there its servers and apps.
      const inside = spawn('ip', ['netns', 'exec', ns, 'sleep', '60'], { stdio: 'ignore' })
      const exited = once(inside, 'exit')
      await new Promise((r) => setTimeout(r, 200))
      assert.ok(ip('netns', 'pids', ns).trim().length > 0, 'a process runs in the stale namespace')

      const removed = sweepStaleFleets()
      assert.ok(removed >= 2, `removed ${removed}`)
      await exited
      const names = ip('netns', 'list')
      assert.ok(!names.includes(ns), 'the stale namespace is gone')
      assert.ok(names.includes(live), "a live process's namespace stays")
      assert.ok(!ip('-o', 'link', 'show').includes(link), 'the stale root-namespace link is gone')
      assert.ok(!existsSync(dir), 'the stale directory is gone')
    } finally {
      for (const n of [ns, live]) spawnSync('ip', ['netns', 'del', n])
      spawnSync('ip', ['link', 'del', link])
    }
  })
})
