/**
 * One PostgreSQL server process: start it on a data directory and wait until it is ready, stop it (fast,
 * immediate or kill), freeze and thaw it, query it over its Unix socket. Making the data directory and
 * choosing roles is the cluster's job (data-dir.ts, clone.ts, cluster.ts).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createWriteStream } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'
import type { Binaries } from './binaries'
import { KitError, KitErrorCodes } from './errors'
import { asUser, type OsUser } from './os-user'
import { allGone, signal } from './process'

/** What a server needs to know about the cluster it belongs to. */
export interface ServerContext {
  readonly baseDir: string
  readonly binaries: Binaries
  readonly osUser: OsUser | undefined
  readonly user: string
  readonly password: string
  readonly database: string
}

/** What a kit server is running as now (not to be confused with pg-pool-guard's ServerRole, a session's report). */
export type ServerState = 'primary' | 'standby' | 'stopped'

/** How long a server may take to report ready (crash recovery included) before it is killed. */
const START_DEADLINE_MS = 60_000

export class PgServer {
  /** 'a' or 'b': stable across promotions, unlike `role`. */
  readonly name: string
  readonly host: string
  readonly port: number
  readonly dataDir: string
  readonly socketDir: string
  readonly logFile: string
  role: ServerState = 'stopped'
  /** Order of promotion; the newest primary has the highest. @internal */
  promotedSeq = 0
  private child: ChildProcess | undefined
  private frozen: number[] = []
  private readonly cluster: ServerContext

  constructor(cluster: ServerContext, name: string, host: string, port: number) {
    this.cluster = cluster
    this.name = name
    this.host = host
    this.port = port
    this.dataDir = join(cluster.baseDir, name, 'data')
    this.socketDir = join(cluster.baseDir, name)
    this.logFile = join(cluster.baseDir, `${name}.log`)
  }

  /** pg config for a TCP connection to this server (password included: test-only). */
  get config(): pg.ClientConfig {
    const c = this.cluster
    return { host: this.host, port: this.port, user: c.user, password: c.password, database: c.database }
  }

  get connectionString(): string {
    const c = this.cluster
    return `postgresql://${c.user}:${encodeURIComponent(c.password)}@${this.host}:${this.port}/${c.database}`
  }

  get pid(): number | undefined {
    return this.child?.pid
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null
  }

  /** Run SQL as the superuser over the Unix socket (unaffected by TCP faults). */
  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>> {
    const client = new pg.Client({ host: this.socketDir, port: this.port, user: this.cluster.user, database: this.cluster.database })
    await client.connect()
    try {
      return await client.query<R>(sql, params)
    } finally {
      await client.end()
    }
  }

  /** Starts the postmaster and resolves when its log shows `readyLine`. @internal */
  async start(readyLine: RegExp): Promise<void> {
    const c = this.cluster
    const where = `postgres ${this.name} at ${this.host}:${this.port}`
    const log = createWriteStream(this.logFile, { flags: 'a' })
    log.on('error', () => {}) // the directory is gone after stop(); late lines do not matter
    const binary = join(c.binaries.binDir, 'postgres')
    const child = spawn(binary, ['-D', this.dataDir], { stdio: ['ignore', 'pipe', 'pipe'], ...asUser(c.osUser) })
    this.child = child
    liveChildren.add(child)
    child.once('exit', () => liveChildren.delete(child))
    let timedOut = false
    let seen = ''
    const ready = new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer): void => {
        log.write(chunk)
        if (seen !== 'ready') {
          seen = (seen + chunk.toString()).slice(-4096)
          if (readyLine.test(seen)) {
            seen = 'ready'
            resolve()
          }
        }
      }
      child.stdout!.on('data', onData)
      child.stderr!.on('data', onData)
      // A spawn failure (EACCES, ENOENT) emits 'error' and no 'exit'.
      child.once('error', (err: NodeJS.ErrnoException) => {
        liveChildren.delete(child)
        log.end()
        const code = err.code === 'EACCES' ? KitErrorCodes.BINARIES_UNREACHABLE : KitErrorCodes.SERVER_EXITED
        reject(new KitError(code, `${where} could not be started from ${binary}: ${err.message}`, { cause: err }))
      })
      child.once('exit', (code, sig) => {
        log.end()
        reject(
          timedOut
            ? new KitError(KitErrorCodes.SERVER_START_TIMEOUT, `${where} was not ready within ${START_DEADLINE_MS} ms and was killed; see ${this.logFile}`)
            : new KitError(KitErrorCodes.SERVER_EXITED, `${where} exited (${code ?? sig}) before it was ready; see ${this.logFile}`)
        )
      })
    })
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, START_DEADLINE_MS)
    timer.unref()
    try {
      await ready
    } finally {
      clearTimeout(timer)
    }
  }

  /** The postmaster and its children (backends, walsender, checkpointer, ...). */
  processIds(): number[] {
    const pid = this.child?.pid
    if (pid === undefined || !this.running) return []
    let children: number[] = []
    try {
      children = execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number)
    } catch {
      // no children
    }
    return [pid, ...children]
  }

  /**
   * SIGSTOP every process of this server: its kernel still accepts connections and ACKs data, but nothing
   * answers — a hung server, or a proxy whose backend is gone. `thaw()` resumes it.
   */
  freeze(): void {
    this.frozen = this.processIds()
    for (const p of this.frozen) signal(p, 'SIGSTOP')
  }

  thaw(): void {
    for (const p of this.frozen) signal(p, 'SIGCONT')
    this.frozen = []
  }

  /** Stop this server: 'fast' (SIGINT, clean), 'immediate' (SIGQUIT, crash-like), 'kill' (SIGKILL the postmaster). */
  async stop(mode: 'fast' | 'immediate' | 'kill' = 'fast'): Promise<void> {
    const child = this.child
    this.role = 'stopped'
    if (!child || child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return
    this.thaw()
    const orphans = mode === 'kill' ? this.processIds().slice(1) : []
    const exited = once(child, 'exit')
    child.kill(mode === 'fast' ? 'SIGINT' : mode === 'immediate' ? 'SIGQUIT' : 'SIGKILL')
    await exited
    // After SIGKILL the backends notice their postmaster is gone and exit on their own; wait for them so
    // the next start does not find the port or shared memory in use.
    await allGone(orphans, 10_000)
  }
}

/** Postmasters still running when the process exits are stopped (immediate shutdown), never orphaned. */
const liveChildren = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of liveChildren) child.kill('SIGQUIT')
})
