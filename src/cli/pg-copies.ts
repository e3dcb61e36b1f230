/**
 * For `doctor`: every copy of pg installed under a project's node_modules, and who pulled each in. Two
 * copies break `instanceof pg.Pool` checks in libraries that have their own (README: "Two copies of pg").
 * Walks node_modules folders only (scoped folders included), never follows a symlinked package's own tree.
 */
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs'
import { join, relative, sep } from 'node:path'
import type { Finding } from './doctor'

export interface PgCopy {
  /** Relative to the project: node_modules/pg, node_modules/@prisma/adapter-pg/node_modules/pg. */
  path: string
  version: string
  /** The package whose node_modules holds it; null for the top-level copy. */
  nestedUnder: string | null
}

/** Bounded so a pathological tree cannot make doctor slow. */
const MAX_DEPTH = 8

export function findPgCopies(projectDir: string): PgCopy[] {
  const out: PgCopy[] = []
  const walk = (nodeModules: string, depth: number): void => {
    if (depth > MAX_DEPTH || !existsSync(nodeModules)) return
    for (const name of safeList(nodeModules)) {
      if (name.startsWith('.')) continue
      const dirs = name.startsWith('@') ? safeList(join(nodeModules, name)).map((n) => join(nodeModules, name, n)) : [join(nodeModules, name)]
      for (const dir of dirs) {
        if (name === 'pg') {
          const version = pgVersionAt(dir)
          if (version) out.push({ path: relative(projectDir, dir).split(sep).join('/'), version, nestedUnder: owner(projectDir, nodeModules) })
        }
        // A symlinked package (npm link, workspaces) is reported if it is pg, but its own tree is not walked.
        if (!isSymlink(dir)) walk(join(dir, 'node_modules'), depth + 1)
      }
    }
  }
  walk(join(projectDir, 'node_modules'), 0)
  return out
}

export function pgCopiesFinding(copies: PgCopy[]): Finding | null {
  if (copies.length < 2) return null
  const list = copies.map((c) => `${c.path} ${c.version}${c.nestedUnder ? ` (for ${c.nestedUnder})` : ''}`).join('; ')
  return {
    code: 'PG_COPIES',
    severity: 'risky',
    message: `${copies.length} copies of pg are installed: ${list}`,
    recommendation: 'let one pg version satisfy every package (raise your pg range), then npm dedupe; or "overrides": { "pg": "$pg" }',
    why: 'a library with its own pg copy takes a guarded Pool for a config object (instanceof fails) and connects around the guard',
  }
}

function pgVersionAt(dir: string): string | null {
  try {
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string }
    return pkg.name === 'pg' && typeof pkg.version === 'string' ? pkg.version : null
  } catch {
    return null
  }
}

/** node_modules/@prisma/adapter-pg/node_modules -> @prisma/adapter-pg; the project's own -> null. */
function owner(projectDir: string, nodeModules: string): string | null {
  const parts = relative(projectDir, nodeModules).split(sep)
  if (parts.length <= 1) return null
  const pkg = parts.slice(0, -1)
  const i = pkg.lastIndexOf('node_modules')
  return pkg.slice(i + 1).join('/') || null
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir)
  } catch {
    return []
  }
}

function isSymlink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink()
  } catch {
    return false
  }
}
