/**
 * pg-pool-guard doctor: what in a connection string or a pg.Pool JSON config makes recovery from a
 * failover slow or unsafe, with the recommended value and the reason for each. Never prints a password.
 * Exit code 1 when something is risky, 0 when only advice remains.
 */
import { existsSync, readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { parseConnectionString } from '../pool/pg-adapter'
import { parseHosts } from '../topology/hosts'

export interface Finding {
  code: string
  severity: 'risky' | 'advice'
  message: string
  recommendation: string
  why: string
}

export interface DoctorReport {
  /** The input with any password replaced by ***. */
  input: string
  findings: Finding[]
}

/** Replaces the password of a URL, and every password-like key of a JSON object. */
export function redact(input: string): string {
  return input
    .replace(/(postgres(?:ql)?:\/\/[^:/@]*:)[^@]*@/gi, '$1***@')
    .replace(/("password"\s*:\s*)"(?:[^"\\]|\\.)*"/gi, '$1"***"')
    .replace(/([?&]password=)[^&]*/gi, '$1***')
}

/** Reads a connection string, or a JSON file holding pg.Pool options. */
export function loadConfig(arg: string): { config: Record<string, unknown>; input: string } {
  if (/^postgres(ql)?:\/\//i.test(arg)) {
    const query = new URLSearchParams(arg.split('?')[1] ?? '')
    const config: Record<string, unknown> = { connectionString: arg }
    // libpq parameters that matter here; pg itself ignores most of them.
    for (const [k, v] of query) config[`url:${k}`] = v
    return { config, input: arg }
  }
  // The argument is not echoed: a mistyped URL may still carry a password.
  if (!existsSync(arg)) throw new Error('doctor: the argument is neither a postgres:// connection string nor a readable file')
  const text = readFileSync(arg, 'utf8')
  try {
    return { config: JSON.parse(text) as Record<string, unknown>, input: text }
  } catch (err) {
    throw new Error(`doctor: ${arg} is not valid JSON (${(err as Error).message})`)
  }
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
    return [{ code: 'UNPARSEABLE', severity: 'risky', message: (err as Error).message, recommendation: 'fix the host list', why: 'pg cannot connect with it' }]
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
  const lines = [`checked: ${redact(r.input).trim().split('\n').join(' ')}`]
  if (r.findings.length === 0) lines.push('nothing to report: recovery from a failover should be fast and safe')
  for (const x of r.findings) {
    lines.push('', `${x.severity === 'risky' ? 'RISKY ' : 'advice'} ${x.code}: ${x.message}`, `       do:  ${x.recommendation}`, `       why: ${x.why}`)
  }
  return lines.join('\n')
}

export async function doctorCommand(args: string[]): Promise<number> {
  const json = args.includes('--json')
  const target = args.find((a) => a !== '--json')
  if (!target) throw new Error('doctor needs a connection string or a JSON config file')
  const { config, input } = loadConfig(target)
  const report: DoctorReport = { input: redact(input), findings: diagnose(config) }
  console.log(json ? JSON.stringify(report, null, 2) : formatReport(report))
  return report.findings.some((x) => x.severity === 'risky') ? 1 : 0
}
