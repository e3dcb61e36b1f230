/**
 * Where the kit keeps its clusters' files, and the initdb template they start from.
 *
 * The directory: PGG_KIT_TMPDIR when set, else /dev/shm when it is a writable tmpfs with room to spare
 * (PostgreSQL data is throwaway here, and on this project's CI machine a data directory on disk made
 * initdb 2x and the standby's copy 14x slower), else os.tmpdir(). A container's default /dev/shm (64 MiB)
 * is too small and is not used.
 *
 * The template: initdb runs once per binaries, OS user and superuser name, into a directory beside the
 * clusters; every cluster's primary starts from a copy (the superuser's password is set after it starts:
 * each cluster has its own). initdb takes about a second, the copy a few milliseconds on tmpfs.
 */
import { createHash, randomBytes } from 'node:crypto'
import { accessSync, chmodSync, constants, cpSync, existsSync, renameSync, rmSync, statfsSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Free space a tmpfs needs before the kit puts clusters there (each takes 40-100 MB). */
const SHM_MIN_FREE_BYTES = 1024 ** 3

let chosen: string | undefined

/** The directory cluster base directories and templates are made in. */
export function kitTmpDir(): string {
  chosen ??= process.env.PGG_KIT_TMPDIR || roomyShm() || tmpdir()
  return chosen
}

/** Every directory a stale cluster may be in (the current choice, and os.tmpdir() where older runs left them). */
export function kitTmpDirs(): string[] {
  return [...new Set([kitTmpDir(), tmpdir()])]
}

function roomyShm(): string | undefined {
  const dir = '/dev/shm'
  try {
    if (!statSync(dir).isDirectory()) return undefined
    accessSync(dir, constants.W_OK | constants.X_OK)
    const fs = statfsSync(dir)
    return fs.bavail * fs.bsize >= SHM_MIN_FREE_BYTES ? dir : undefined
  } catch {
    return undefined
  }
}

/**
 * The template data directory for `key` (binaries, OS user, superuser), made by `make(dir)` the first
 * time. Built beside its final name and renamed into place, so concurrent processes never see half of one:
 * the loser of a race discards its copy.
 */
export async function template(key: string, make: (dir: string) => Promise<void>): Promise<string> {
  const dir = join(kitTmpDir(), `pgg-template-${createHash('sha256').update(key).digest('hex').slice(0, 16)}`)
  if (existsSync(join(dir, 'PG_VERSION'))) return dir
  const building = `${dir}.building-${process.pid}-${randomBytes(4).toString('hex')}`
  try {
    await make(building)
    try {
      renameSync(building, dir)
    } catch (err) {
      if (!existsSync(join(dir, 'PG_VERSION'))) throw err // not a lost race
    }
  } finally {
    rmSync(building, { recursive: true, force: true })
  }
  return dir
}

/** A fresh copy of a template (mode 0700, as PostgreSQL requires of a data directory). */
export function copyTemplate(from: string, to: string): void {
  cpSync(from, to, { recursive: true })
  chmodSync(to, 0o700)
}
