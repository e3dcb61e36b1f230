/**
 * Binaries the server's OS user can reach. As root, PostgreSQL runs as `postgres`, which cannot execute a
 * binary under a directory it cannot enter (a checkout under /root, 0700; a `mktemp -d`). Then the
 * install tree (bin, lib, share: what the binaries find relative to themselves) is copied once into a
 * 0755 directory under os.tmpdir(), named by the source path and version, and the servers run from there.
 */
import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { chmodSync, cpSync, existsSync, lstatSync, readdirSync, realpathSync, renameSync, rmSync, statSync, type Stats } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join, parse, sep } from 'node:path'
import type { Binaries } from './binaries'
import { KitError, KitErrorCodes } from './errors'
import { asUser, type OsUser } from './os-user'

/** What a staged copy holds: the directories PostgreSQL resolves relative to its bin directory. */
const TREE = ['bin', 'lib', 'lib64', 'share']
/** A tree larger than this is not an install tree of PostgreSQL alone (binDir /usr/bin, say): not copied. */
const MAX_STAGE_BYTES = 1024 ** 3

const checked = new Map<string, Binaries>()

/** `binaries`, or a staged copy of them that `user` can run; throws BINARIES_UNREACHABLE when neither works. */
export function reachableBinaries(binaries: Binaries, user: OsUser | undefined): Binaries {
  if (!user) return binaries
  const key = `${binaries.binDir}\0${user.uid}`
  let found = checked.get(key)
  if (!found) {
    found = resolve(binaries, user)
    checked.set(key, found)
  }
  return found
}

function resolve(b: Binaries, user: OsUser): Binaries {
  if (canRun(b.binDir, user)) return b
  const blocked = firstBlockedDir(b.binDir, user)
  const why = blocked ? `${blocked.dir} is mode ${octal(blocked.mode)} owned by uid ${blocked.uid}` : 'postgres --version fails as that user'
  const fail = (reason: string): KitError =>
    new KitError(
      KitErrorCodes.BINARIES_UNREACHABLE,
      `as root, PostgreSQL runs as the '${user.name}' OS user, which cannot reach ${b.binDir} (${why}), and ${reason}. ` +
        `Let it in (chmod o+x ${blocked?.dir ?? 'each directory on the path'}), or point PGG_PG_BINDIR (or binaries: { binDir }) at ` +
        `binaries outside that directory, or set TMPDIR to a directory '${user.name}' can enter so the kit can stage a copy there.`
    )
  const root = dirname(b.binDir)
  if (basename(b.binDir) !== 'bin') throw fail(`no copy can be staged: ${b.binDir} is not the bin directory of an install tree`)
  let staged: string
  try {
    staged = stage(root, b)
  } catch (err) {
    if (err instanceof KitError) throw err
    throw fail(`staging a copy under ${tmpdir()} failed: ${(err as Error).message}`)
  }
  const binDir = join(staged, 'bin')
  if (!canRun(binDir, user)) {
    const inner = firstBlockedDir(binDir, user)
    rmSync(staged, { recursive: true, force: true }) // useless to any later run as well
    throw fail(`the copy staged in ${staged} is not reachable either${inner ? ` (${inner.dir} is mode ${octal(inner.mode)})` : ''}`)
  }
  return { ...b, binDir, stagedFrom: b.binDir }
}

/** Whether `user` can run `binDir/postgres --version` (directory modes, ACLs, shared libraries: all at once). */
function canRun(binDir: string, user: OsUser): boolean {
  try {
    execFileSync(join(binDir, 'postgres'), ['--version'], { ...asUser(user), cwd: '/', stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

export interface BlockedDir {
  dir: string
  mode: number
  uid: number
}

/**
 * The first directory on the way to `path` (the path as given, then its real path) that `user` may not
 * search, by the owner/group/other execute bits; undefined when there is none. Pure but for `stat`.
 */
export function firstBlockedDir(path: string, user: Pick<OsUser, 'uid' | 'gid' | 'groups'>, stat: (p: string) => Pick<Stats, 'mode' | 'uid' | 'gid'> = statSync): BlockedDir | undefined {
  let real = path
  try {
    real = realpathSync(path)
  } catch {
    // a path that does not resolve: check it as given
  }
  for (const p of real === path ? [path] : [path, real]) {
    for (const dir of ancestors(p)) {
      let st: Pick<Stats, 'mode' | 'uid' | 'gid'>
      try {
        st = stat(dir)
      } catch {
        continue
      }
      const bit = st.uid === user.uid ? 0o100 : st.gid === user.gid || user.groups.includes(st.gid) ? 0o010 : 0o001
      if (user.uid !== 0 && (st.mode & bit) === 0) return { dir, mode: st.mode & 0o7777, uid: st.uid }
    }
  }
  return undefined
}

/** '/a/b/c' → ['/', '/a', '/a/b', '/a/b/c']. */
function ancestors(path: string): string[] {
  const { root } = parse(path)
  const parts = path.slice(root.length).split(sep).filter(Boolean)
  return [root, ...parts.map((_, i) => root + parts.slice(0, i + 1).join(sep))]
}

/** Copies the install tree at `root` to a cached 0755 directory under tmpdir(); returns that directory. */
function stage(root: string, b: Binaries): string {
  const real = realpathSync(root)
  const pg = statSync(join(b.binDir, 'postgres'))
  const key = createHash('sha256').update(`${real}\0${b.version ?? b.major}\0${pg.size}\0${pg.mtimeMs}`).digest('hex').slice(0, 16)
  const dir = join(tmpdir(), `pg-pool-guard-pg${b.major}-${key}`)
  if (existsSync(dir)) return trusted(dir)
  const parts = TREE.filter((d) => existsSync(join(real, d)))
  let bytes = 0
  for (const d of parts) bytes += sizeOf(join(real, d))
  if (bytes > MAX_STAGE_BYTES) {
    throw new KitError(KitErrorCodes.BINARIES_UNREACHABLE, `${real} holds ${Math.round(bytes / 1024 ** 2)} MB in ${parts.join(', ')}: too much to be a PostgreSQL install tree, not staged; point PGG_PG_BINDIR at binaries the postgres OS user can reach`)
  }
  // Copied under a private name and renamed into place, so a concurrent run sees all of it or none.
  const tmp = `${dir}.${process.pid}.${randomBytes(4).toString('hex')}`
  try {
    for (const d of parts) cpSync(join(real, d), join(tmp, d), { recursive: true, verbatimSymlinks: true })
    openUp(tmp)
    renameSync(tmp, dir)
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true })
    if (existsSync(dir)) return trusted(dir) // another run staged it first
    throw err
  }
  return dir
}

/** A cached copy is used only if we made it: owned by us and writable by no one else. */
function trusted(dir: string): string {
  const st = lstatSync(dir)
  if (!st.isDirectory() || st.uid !== process.getuid?.() || (st.mode & 0o022) !== 0 || !existsSync(join(dir, 'bin', 'postgres'))) {
    throw new KitError(KitErrorCodes.BINARIES_UNREACHABLE, `${dir} exists but was not staged by this kit (owner uid ${st.uid}, mode ${octal(st.mode)}); remove it and run again`)
  }
  return dir
}

/** Directories 0755, files readable by all (executable by all where the owner may execute). */
function openUp(path: string): void {
  const st = lstatSync(path)
  if (st.isSymbolicLink()) return
  if (st.isDirectory()) {
    chmodSync(path, 0o755)
    for (const e of readdirSync(path)) openUp(join(path, e))
  } else {
    chmodSync(path, (st.mode & 0o7777 & ~0o022) | 0o444 | (st.mode & 0o100 ? 0o111 : 0))
  }
}

const octal = (mode: number): string => (mode & 0o7777).toString(8).padStart(4, '0')

function sizeOf(path: string): number {
  const st = lstatSync(path)
  if (!st.isDirectory()) return st.size
  let n = 0
  for (const e of readdirSync(path)) n += sizeOf(join(path, e))
  return n
}
