/**
 * A server's files: its data directory made by initdb, pg_hba.conf, and the per-server settings file
 * (`pg_pool_guard.conf`, included from postgresql.conf and rewritten on every clone, since the copy brings
 * the primary's).
 */
import { execFileSync } from 'node:child_process'
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'
import { KitError, KitErrorCodes } from './errors'
import { copyTemplate, template } from './kit-dir'
import { chownTo, runAs, stderrOf } from './os-user'
import type { PgServer, ServerContext } from './server'

export type Settings = Record<string, string | number | boolean>

export interface ServerFileOptions {
  /** Also listen on ::1. */
  ipv6?: boolean
  /** Extra postgresql.conf settings for every server. */
  settings?: Settings
  /** ssl = on with these PEM files, or `true` for a self-signed pair. */
  tls?: boolean | { certFile: string; keyFile: string }
}

const HBA = [
  'local all all trust',
  'local replication all trust',
  'host all all 127.0.0.0/8 scram-sha-256',
  'host all all ::1/128 scram-sha-256',
  'host replication all 127.0.0.0/8 scram-sha-256',
  'host replication all ::1/128 scram-sha-256',
  '',
].join('\n')

export class ServerFiles {
  private tlsMade: { certFile: string; keyFile: string } | undefined

  constructor(
    private readonly ctx: ServerContext,
    private readonly options: ServerFileOptions
  ) {}

  /**
   * A fresh data directory for `server`, configured for this kit: a copy of the initdb template for these
   * binaries, OS user and superuser (kit-dir.ts), made on first use. The template's superuser has no
   * password: the cluster sets its own once the server runs (setPassword), over the Unix socket.
   */
  async initdb(server: PgServer): Promise<void> {
    const c = this.ctx
    mkdirSync(server.socketDir, { recursive: true })
    chownTo(c.osUser, server.socketDir)
    const key = [c.binaries.binDir, c.binaries.version ?? c.binaries.major, c.osUser?.uid ?? process.getuid?.(), c.user].join('\0')
    copyTemplate(await template(key, (dir) => this.makeTemplate(dir)), server.dataDir)
    chownTo(c.osUser, server.dataDir, true)
    this.writeConf(server, {})
  }

  /** `ALTER ROLE ... PASSWORD` for the cluster's superuser, on a running server made by initdb(). */
  async setPassword(server: PgServer): Promise<void> {
    const c = this.ctx
    // The servers run with synchronous_commit off: a commit returns before its WAL is written, and a
    // postmaster SIGKILLed within the WAL writer's delay (200 ms) comes back from crash recovery with the
    // template's superuser, who has no password. This one commit waits for its WAL to reach the OS
    // (fsync stays off: a killed server loses nothing the kernel has).
    await server.query(`SET synchronous_commit = on; ALTER ROLE ${pg.escapeIdentifier(c.user)} PASSWORD ${pg.escapeLiteral(c.password)}`)
  }

  private async makeTemplate(dir: string): Promise<void> {
    const c = this.ctx
    // Local connections trust (the kit's own, over the socket); TCP needs the password, set per cluster.
    await runAs(c.osUser, join(c.binaries.binDir, 'initdb'), [
      '-D', dir, '-U', c.user, '--auth-local=trust', '--auth-host=scram-sha-256',
      '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions',
    ], c.baseDir)
    writeFileSync(join(dir, 'pg_hba.conf'), HBA)
    writeFileSync(join(dir, 'postgresql.conf'), "\ninclude_if_exists = 'pg_pool_guard.conf'\n", { flag: 'a' })
  }

  /** Writes the per-server settings file: listen address, port, socket, replication, `extra` last. */
  writeConf(server: PgServer, extra: Settings): void {
    const listen = [server.host, ...(this.options.ipv6 ? ['::1'] : [])].join(',')
    const tls = this.tlsFiles()
    const settings: Settings = {
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
    const file = join(server.dataDir, 'pg_pool_guard.conf')
    writeFileSync(file, text + '\n')
    chownTo(this.ctx.osUser, file)
  }

  private tlsFiles(): { certFile: string; keyFile: string } | undefined {
    const tls = this.options.tls
    if (!tls) return undefined
    if (tls !== true) return tls
    this.tlsMade ??= selfSignedPair(this.ctx)
    return this.tlsMade
  }
}

/** A self-signed certificate and key in the cluster's directory, made by the openssl command. */
function selfSignedPair(ctx: ServerContext): { certFile: string; keyFile: string } {
  const certFile = join(ctx.baseDir, 'server.crt')
  const keyFile = join(ctx.baseDir, 'server.key')
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=pg-pool-guard-test',
      '-keyout', keyFile, '-out', certFile], { stdio: 'pipe' })
  } catch (err) {
    throw new KitError(KitErrorCodes.COMMAND_FAILED, `tls: true needs the openssl command to make ${certFile}: ${stderrOf(err)}`, { cause: err })
  }
  chmodSync(keyFile, 0o600)
  chownTo(ctx.osUser, keyFile)
  chownTo(ctx.osUser, certFile)
  return { certFile, keyFile }
}
