/**
 * pg-pool-guard doctor: what in a connection string or a pg.Pool JSON config makes recovery from a
 * failover slow or unsafe, with the recommended value and the reason for each. Never prints a password.
 * Also reports more than one copy of pg under ./node_modules (pg-copies.ts). Exit code 1 when something is
 * risky, 0 when only advice remains.
 */
import { existsSync } from 'node:fs'
import { isIP } from 'node:net'
import { parseConnectionString, parseHosts } from '../topology/hosts'
import { CliError, CliErrorCodes, UsageError } from './errors'
import { parseJsonText, readInputFile } from './input'
import { print } from './output'
import { findPgCopies, pgCopiesFinding } from './pg-copies'
import { addSecrets, collectSecrets, redact, stripUrlPassword, urlSecrets } from './secrets'

export { redact } from './secrets'

export interface Finding {
  code: string
  severity: 'risky' | 'advice'
  message: string
  recommendation: string
  why: string
}

export interface DoctorReport {
  /**
   * What was checked, never the input itself: "a connection string", or the config file's name. A config
   * holds passwords, TLS keys and passphrases; redacting by pattern would miss some of them.
   */
  input: string
  findings: Finding[]
}

/**
 * Reads a connection string, or a JSON file holding pg.Pool options. Every secret value it holds is
 * registered with the output scrubber, and URL passwords are removed from what `diagnose` sees (its
 * messages name hosts, and a password with an '@' would otherwise be read as part of the host).
 */
export function loadConfig(arg: string): { config: Record<string, unknown>; input: string } {
  if (/^postgres(ql)?:\/\//i.test(arg)) {
    addSecrets(urlSecrets(arg))
    const cs = stripUrlPassword(arg)
    const query = new URLSearchParams(cs.split('?')[1] ?? '')
    const config: Record<string, unknown> = { connectionString: cs }
    // libpq parameters that matter here; pg itself ignores most of them.
    for (const [k, v] of query) config[`url:${k}`] = v
    return { config, input: 'a connection string' }
  }
  // The argument is not echoed when it names no file: a mistyped URL may still carry a password.
  if (!existsSync(arg)) throw new CliError(CliErrorCodes.INPUT_UNREADABLE, 'doctor: the argument is neither a postgres:// connection string nor a readable file')
  const text = readInputFile(arg, 'doctor: the config file')
  const config = parseJsonText(text, `doctor: ${arg}`)
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new CliError(CliErrorCodes.INPUT_INVALID_JSON, `doctor: ${arg} holds JSON but not an object of pg.Pool options`)
  }
  addSecrets(collectSecrets(config))
  const c = { ...(config as Record<string, unknown>) }
  if (typeof c.connectionString === 'string') c.connectionString = stripUrlPassword(c.connectionString)
  return { config: c, input: arg }
}

export function diagnose(config: Record<string, unknown>): Finding[] {
  const f: Finding[] = []
  const guarded = typeof config.guard === 'object' && config.guard !== null
  const guard = (config.guard ?? {}) as Record<string, unknown>
  const url = (k: string): string | undefined => config[`url:${k}`] as string | undefined
  let parsed: ReturnType<typeof parseHosts>
  try {
    parsed = parseHosts(config)
  } catch (err) {
    // The parser quotes the part it could not read ('host:port'); that part may hold a mistyped password.
    const message = redact((err as Error).message.replace(/^pg-pool-guard: /, '')).replace(/'[^']*'|"[^"]*"/g, '(…)')
    return [{ code: 'UNPARSEABLE', severity: 'risky', message, recommendation: 'fix the host list', why: 'pg cannot connect with it' }]
  }
  const fromUrl = typeof config.connectionString === 'string' && parsed.connectionString ? safeParse(parsed.connectionString) : {}
  const get = (k: string): unknown => config[k] ?? fromUrl[k]

  // Keepalive.
  if (!guarded) {
    const keepAlive = get('keepAlive') === true || url('keepalives') === '1'
    const delay = Number(get('keepAliveInitialDelayMillis') ?? (url('keepalives_idle') ? Number(url('keepalives_idle')) * 1000 : 0))
    if (!keepAlive) {
      f.push({
        code: 'NO_KEEPALIVE', severity: 'risky',
        message: 'TCP keepalive is off (keepAlive is not true)',
        recommendation: 'keepAlive: true, keepAliveInitialDelayMillis: 5000 — or use pg-pool-guard, which also sets the probe interval, count and TCP_USER_TIMEOUT',
        why: 'an idle pooled socket to a host that vanished (failover, cut link) is never noticed: it is handed to the next caller, whose query then hangs',
      })
    } else if (!(delay > 0)) {
      f.push({
        code: 'KEEPALIVE_DELAY_ZERO', severity: 'risky',
        message: 'keepAlive is on with keepAliveInitialDelayMillis 0 (pg\'s default)',
        recommendation: 'keepAliveInitialDelayMillis: 5000',
        why: 'with a delay of 0 Node cannot set the idle time and Linux uses its default: the first probe after 7200 s, a dead socket found after 2 h 11 min',
      })
    }
  } else if (guard.userTimeoutMs === 0) {
    f.push({
      code: 'NO_USER_TIMEOUT', severity: 'advice',
      message: 'guard.userTimeoutMs is 0: TCP_USER_TIMEOUT is not set',
      recommendation: 'leave it at its default (30000)',
      why: 'it is the kernel backstop when the event loop is blocked and the guard cannot run',
    })
  }

  // Timeouts.
  const connectTimeout = Number(get('connectionTimeoutMillis') ?? (url('connect_timeout') ? Number(url('connect_timeout')) * 1000 : 0))
  if (!(connectTimeout > 0)) {
    f.push({
      code: 'NO_CONNECTION_TIMEOUT', severity: 'risky',
      message: 'no connectionTimeoutMillis (connect_timeout)',
      recommendation: 'connectionTimeoutMillis: 5000',
      why: 'a connection attempt to a blackholed host waits for SYN retransmissions for over two minutes, and pool.connect() with it',
    })
  }
  const options = String(get('options') ?? url('options') ?? '')
  const hasStatementTimeout = get('statement_timeout') !== undefined || /statement_timeout/.test(options)
  const hasQueryTimeout = get('query_timeout') !== undefined
  if (!guarded && !hasQueryTimeout && !hasStatementTimeout) {
    f.push({
      code: 'NO_QUERY_TIMEOUT', severity: 'risky',
      message: 'no query_timeout or statement_timeout',
      recommendation: 'statement_timeout (server side) and query_timeout (client side, a little larger) fitted to your slowest legitimate query — or pg-pool-guard, which evicts dead sockets without timing out slow healthy queries',
      why: 'a query in flight when the link dies waits for TCP retransmissions to give up: ~15 minutes (tcp_retries2 = 15)',
    })
  }

  // Topology.
  const hosts = parsed.hosts
  const tsa = (guard.targetSessionAttrs as string | undefined) ?? parsed.targetSessionAttrs ?? url('target_session_attrs')
  if (hosts.length <= 1) {
    const name = hosts[0]?.host
    const viaName = name !== undefined && isIP(name) === 0 && !name.startsWith('/')
    f.push({
      code: 'SINGLE_HOST', severity: viaName ? 'advice' : 'risky',
      message: viaName ? `one host, ${name}: failover depends on its DNS record moving` : `one host${name ? `, ${name}` : ''}, no failover`,
      recommendation: viaName
        ? 'list the hosts (host: "a,b") with targetSessionAttrs "read-write", or keep the name and let pg-pool-guard re-resolve it (stale-dns)'
        : 'list the primary and its standbys (host: "a,b") with targetSessionAttrs "read-write"',
      why: viaName
        ? 'pg resolves the name once per connection; sockets to the old address stay open after the record moves, and keep writing to the old primary if it is still up'
        : 'when this host fails over, the pool keeps connecting to it',
    })
  } else if (tsa === undefined || tsa === 'any') {
    f.push({
      code: 'NO_TARGET_SESSION_ATTRS', severity: 'risky',
      message: `${hosts.length} hosts but no target_session_attrs`,
      recommendation: 'targetSessionAttrs: "read-write" for writers (guard option or the URL\'s target_session_attrs), "prefer-standby" for readers',
      why: 'any host that accepts the connection is used: writes may go to a standby (and fail) or to an old primary after a split-brain (and be lost)',
    })
  }
  if (!(Number(get('maxLifetimeSeconds')) > 0) && hosts.some((h) => isIP(h.host) === 0 && !h.host.startsWith('/'))) {
    f.push({
      code: 'NO_MAX_LIFETIME', severity: 'advice',
      message: 'no maxLifetimeSeconds with a host name',
      recommendation: 'maxLifetimeSeconds: 1800',
      why: 'connections never move to a new address behind the name unless something closes them',
    })
  }
  if (!guarded) {
    f.push({
      code: 'UNGUARDED', severity: 'advice',
      message: 'a plain pg.Pool: nothing watches the sockets',
      recommendation: "import { Pool } from 'pg-pool-guard' (same options, plus guard)",
      why: 'zombie sockets, split-brain and stale DNS are seen by the kernel and the servers, not by pg.Pool',
    })
  }
  return f
}

function safeParse(cs: string): Record<string, unknown> {
  try {
    return parseConnectionString(cs)
  } catch {
    return {}
  }
}

export function formatReport(r: DoctorReport): string {
  const lines = [`checked: ${r.input}`]
  if (r.findings.length === 0) lines.push('nothing to report: recovery from a failover should be fast and safe')
  for (const x of r.findings) {
    lines.push('', `${x.severity === 'risky' ? 'RISKY ' : 'advice'} ${x.code}: ${x.message}`, `       do:  ${x.recommendation}`, `       why: ${x.why}`)
  }
  return lines.join('\n')
}

export async function doctorCommand(args: string[]): Promise<number> {
  const json = args.includes('--json')
  const targets = args.filter((a) => a !== '--json')
  if (targets.length !== 1) throw new UsageError('doctor needs one connection string or JSON config file')
  const { config, input } = loadConfig(targets[0])
  const copies = pgCopiesFinding(findPgCopies(process.cwd())) // the project doctor runs in
  const report: DoctorReport = { input, findings: [...diagnose(config), ...(copies ? [copies] : [])] }
  print(json ? JSON.stringify(report, null, 2) : formatReport(report))
  return report.findings.some((x) => x.severity === 'risky') ? 1 : 0
}
