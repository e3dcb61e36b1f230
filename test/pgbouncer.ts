/**
 * A real PgBouncer (the Debian package; .ci/run installs it as root) in front of a kit cluster, for the
 * pooler tests: transaction pooling, SCRAM with the cluster's password, its own loopback address. As root
 * it runs as the servers' OS user (PgBouncer refuses to run as root). `pgbouncerMissing()` says why the
 * tests skip.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { chownSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Cluster } from '../src/testing/cluster'
import { freePort } from '../src/testing/ports'

export function pgbouncerMissing(file: string): string | undefined {
  try {
    execFileSync('pgbouncer', ['--version'], { stdio: 'ignore' })
    return undefined
  } catch {
    const why = 'the pgbouncer binary is not installed (Debian package pgbouncer; .ci/run installs it as root)'
    console.log(`# SKIP ${file}: ${why}`)
    return why
  }
}

export interface Bouncer {
  host: string
  port: number
  /** The log so far (for failure messages). */
  log(): string
  stop(): Promise<void>
}

export async function startPgBouncer(c: Cluster, host: string, settings: Record<string, string | number> = {}): Promise<Bouncer> {
  const port = await freePort([host])
  const dir = c.baseDir
  const ini = join(dir, `pgbouncer-${port}.ini`)
  const users = join(dir, `pgbouncer-${port}.users`)
  const logfile = join(dir, `pgbouncer-${port}.log`)
  const conf: Record<string, string | number> = {
    listen_addr: host, listen_port: port, unix_socket_dir: '', auth_type: 'scram-sha-256', auth_file: users, pool_mode: 'transaction',
    default_pool_size: 5, logfile, ignore_startup_parameters: 'extra_float_digits', ...settings,
  }
  writeFileSync(ini, `[databases]\n* = host=${c.primary.host} port=${c.port}\n[pgbouncer]\n${Object.entries(conf).map(([k, v]) => `${k} = ${v}`).join('\n')}\n`)
  writeFileSync(users, `"${c.user}" "${c.password}"\n`, { mode: 0o600 })
  writeFileSync(logfile, '')
  if (c.osUser) for (const f of [ini, users, logfile]) chownSync(f, c.osUser.uid, c.osUser.gid)
  const child: ChildProcess = spawn('pgbouncer', [...(c.osUser ? ['-u', c.osUser.name] : []), ini], { stdio: 'ignore' })
  const log = (): string => {
    try {
      return readFileSync(logfile, 'utf8')
    } catch {
      return ''
    }
  }
  // No event says "listening": its log line does (polled, briefly).
  for (const deadline = Date.now() + 10_000; !/listening on/.test(log()); ) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`pgbouncer did not start: ${log().slice(-500)}`)
    await new Promise((r) => setTimeout(r, 20))
  }
  return {
    host,
    port,
    log,
    async stop() {
      if (child.exitCode !== null) return
      const exited = new Promise((r) => child.once('exit', r))
      child.kill('SIGTERM')
      await exited
    },
  }
}
