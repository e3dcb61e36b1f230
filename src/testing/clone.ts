/**
 * Cloning a standby from a running primary with the low-level backup API (pg_backup_start/stop,
 * PostgreSQL 15+) and a physical replication slot, so no pg_basebackup binary is needed: the embedded
 * binaries ship only initdb, pg_ctl and postgres. The same clone re-joins a diverged old primary, so no
 * pg_rewind is needed either.
 */
import { chmodSync, copyFileSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'
import type { ServerFiles } from './data-dir'
import { chownTo } from './os-user'
import type { PgServer, ServerContext } from './server'

/** Clones `from` (running) into `server` through replication slot `slot`, configures it as a standby, starts it. */
export async function cloneStandby(ctx: ServerContext, files: ServerFiles, server: PgServer, from: PgServer, slot: string, beforeStart?: () => Promise<void>): Promise<void> {
  rmSync(server.dataDir, { recursive: true, force: true })
  mkdirSync(server.socketDir, { recursive: true })
  chownTo(ctx.osUser, server.socketDir)
  const admin = new pg.Client({ host: from.socketDir, port: from.port, user: ctx.user, database: ctx.database })
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
  const conninfo = `host=${from.host} port=${from.port} user=${ctx.user} password=${ctx.password} application_name=${server.name}`
  files.writeConf(server, { primary_conninfo: conninfo, primary_slot_name: slot, recovery_target_timeline: 'latest' })
  chownTo(ctx.osUser, server.dataDir, true)
  await beforeStart?.()
  await server.start(/ready to accept read-only connections/)
  server.role = 'standby'
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
