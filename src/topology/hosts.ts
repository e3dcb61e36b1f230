/**
 * Host lists and libpq's session attributes, pure. node-postgres takes one host; libpq takes several
 * (`host=a,b port=5432,5433`, `postgresql://a:5432,b:5433/db?target_session_attrs=read-write`) and picks
 * one by role (node-postgres issue #1470). Definitions follow libpq 14 (target_session_attrs) and 16
 * (load_balance_hosts).
 */
import { ConfigError } from '../errors'
import { dirname } from 'node:path'
import type { ServerRole } from '../pg/internals'

export type { ServerRole }

export interface HostSpec {
  host: string
  port: number
}

export const TARGET_SESSION_ATTRS = ['any', 'read-write', 'read-only', 'primary', 'standby', 'prefer-standby'] as const
export type TargetSessionAttrs = (typeof TARGET_SESSION_ATTRS)[number]
export const LOAD_BALANCE_HOSTS = ['disable', 'random'] as const
export type LoadBalanceHosts = (typeof LOAD_BALANCE_HOSTS)[number]


export function roleName(r: ServerRole): 'primary' | 'standby' {
  return r.inHotStandby ? 'standby' : 'primary'
}

/** libpq 14 semantics; prefer-standby is resolved by the planner (standbys first, then any). */
export function satisfies(attrs: TargetSessionAttrs | 'standby-first-pass', r: ServerRole): boolean {
  switch (attrs) {
    case 'any':
    case 'prefer-standby':
      return true
    case 'read-write':
      return !r.inHotStandby && !r.readOnly
    case 'read-only':
      return r.inHotStandby || r.readOnly
    case 'primary':
      return !r.inHotStandby
    case 'standby':
    case 'standby-first-pass':
      return r.inHotStandby
  }
}

export function describeRole(r: ServerRole): string {
  return r.inHotStandby ? 'a standby (in_hot_standby=on)' : r.readOnly ? 'a read-only primary (default_transaction_read_only=on)' : 'a read-write primary'
}

export interface ParsedHosts {
  hosts: HostSpec[]
  /** From the connection string's target_session_attrs / load_balance_hosts, when present. */
  targetSessionAttrs?: TargetSessionAttrs
  loadBalanceHosts?: LoadBalanceHosts
  /** The connection string with its host list removed (pg cannot parse a multi-host URL), if there was one. */
  connectionString?: string
}

/**
 * Hosts from pg-style options: `host` as 'a', 'a,b' or ['a', 'b'], `port` as one number for all, 'p1,p2'
 * or [p1, p2]; or a connection string `postgresql://user@a:5432,b:5433/db?...` (its hosts win, as in pg).
 * Input pg would choke on later (an empty host in a list, a host that is not a string, a connection string
 * that is not a string) is a ConfigError here, at construction.
 */
export function parseHosts(options: { host?: unknown; port?: unknown; connectionString?: unknown }): ParsedHosts {
  const cs = options.connectionString
  if (cs !== undefined && cs !== null && typeof cs !== 'string') {
    throw new ConfigError(`connectionString must be a string, got ${typeof cs}`)
  }
  if (typeof cs === 'string' && cs !== '') {
    const fromUrl = parseUrlHosts(cs)
    if (fromUrl) return fromUrl
  }
  const hosts = hostList(options.host)
  const portList = splitList('port', options.port).map((p) => toPort(p))
  if (portList.length > 1 && portList.length !== hosts.length) {
    throw new ConfigError(`${hosts.length} hosts but ${portList.length} ports; give one port for all, or one per host`)
  }
  return {
    hosts: hosts.map((host, i) => ({ host, port: portList[portList.length > 1 ? i : 0] ?? defaultPort() })),
  }
}

/** pg's default port when none is given: PGPORT, else 5432 (pg's ConnectionParameters). */
function defaultPort(): number {
  const env = Number(process.env.PGPORT)
  return Number.isInteger(env) && env >= 1 && env <= 65535 ? env : 5432
}

/** `host`: a string (one host, a Unix socket directory, or 'a,b') or an array of strings; no empty entries. */
function hostList(v: unknown): string[] {
  if (v === undefined || v === null || v === '') return []
  if (typeof v !== 'string' && !Array.isArray(v)) {
    throw new ConfigError(`host must be a string or an array of strings, got ${typeof v === 'number' ? `the number ${v}` : typeof v}`)
  }
  if (Array.isArray(v)) {
    v.forEach((h, i) => {
      if (typeof h !== 'string') throw new ConfigError(`host[${i}] must be a string, got ${typeof h}`)
    })
  }
  const list = splitList('host', v)
  const empty = list.findIndex((h) => h === '')
  if (empty >= 0) {
    throw new ConfigError(`host ${JSON.stringify(Array.isArray(v) ? v : String(v))} has an empty entry (position ${empty + 1} of ${list.length})`)
  }
  return list
}

function splitList(what: string, v: unknown): string[] {
  if (v === undefined || v === null || v === '') return []
  if (Array.isArray(v)) return v.map((x) => String(x).trim())
  if (typeof v === 'number') return [String(v)]
  if (typeof v === 'string') return v.startsWith('/') ? [v] : v.split(',').map((s) => s.trim())
  throw new ConfigError(`${what} must be a string, a number or an array, got ${typeof v}`)
}

function toPort(p: string): number {
  const n = Number(p)
  if (p === '' || !Number.isInteger(n) || n < 1 || n > 65535) throw new ConfigError(`invalid port ${JSON.stringify(p)}`)
  return n
}

/**
 * A multi-host URL, `postgresql://u:p@a:1,b:2,[::1]:3/db?x=y`, parsed as pg parses a URL. Only the host list
 * is ours to split: as in the WHATWG URL parser pg uses, the authority ends at the first '/', '?' or '#'
 * after '//', and the hosts start after its *last* '@' (an unencoded '@' in a password belongs to the
 * password). Everything else — user, password, database, parameters — is read by pg-connection-string
 * from the URL with only the first host in it, which is also what pg is given.
 */
function parseUrlHosts(cs: string): ParsedHosts | undefined {
  const m = /^(postgres(?:ql)?:\/\/)([^/?#]*)([\s\S]*)$/i.exec(cs)
  if (!m) return undefined
  const [, scheme, authority, rest] = m
  const at = authority.lastIndexOf('@')
  const userinfo = authority.slice(0, at + 1)
  const items = splitHostPart(authority.slice(at + 1))
  if (items.length > 1) {
    const empty = items.findIndex((x) => x === '')
    if (empty >= 0) throw new ConfigError(`the connection string's host list has an empty entry (position ${empty + 1} of ${items.length})`)
  }
  const single = items.length > 1 ? `${scheme}${userinfo}${items[0]}${rest}` : cs
  const config = pgParse(single, 'the connection string')
  let hosts: HostSpec[]
  if (items.length > 1) {
    hosts = items.map((item) => {
      const h = pgParse(`${scheme}${item}`, `host '${item}' in the connection string`)
      return { host: String(h.host ?? ''), port: h.port ? toPort(String(h.port)) : defaultPort() }
    })
  } else {
    // One host (or none, or ?host=/socket/dir): exactly what pg will use; none leaves it to pg's defaults.
    const host = typeof config.host === 'string' ? config.host : ''
    hosts = host === '' ? [] : [{ host, port: config.port ? toPort(String(config.port)) : defaultPort() }]
  }
  const tsa = param(config, 'target_session_attrs')
  const lb = param(config, 'load_balance_hosts')
  if (tsa !== undefined && !TARGET_SESSION_ATTRS.includes(tsa as TargetSessionAttrs)) {
    throw new ConfigError(`target_session_attrs=${tsa} in the connection string; expected one of ${TARGET_SESSION_ATTRS.join(', ')}`)
  }
  if (lb !== undefined && !LOAD_BALANCE_HOSTS.includes(lb as LoadBalanceHosts)) {
    throw new ConfigError(`load_balance_hosts=${lb} in the connection string; expected one of ${LOAD_BALANCE_HOSTS.join(', ')}`)
  }
  return {
    hosts,
    targetSessionAttrs: tsa as TargetSessionAttrs | undefined,
    loadBalanceHosts: lb as LoadBalanceHosts | undefined,
    connectionString: single,
  }
}

function param(config: Record<string, unknown>, key: string): string | undefined {
  const v = config[key]
  return typeof v === 'string' ? v : undefined
}

/** pg's own parser; its failures become a ConfigError that quotes `what`, never the URL (it holds the password). */
function pgParse(url: string, what: string): Record<string, unknown> {
  try {
    return parseConnectionString(url)
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err)
    throw new ConfigError(`cannot parse ${what}: ${reason}`)
  }
}

/** Splits "a:1,[::1]:2,b" on commas outside brackets. */
function splitHostPart(s: string): string[] {
  const out: string[] = []
  let depth = 0
  let cur = ''
  for (const ch of s) {
    if (ch === '[') depth++
    if (ch === ']') depth--
    if (ch === ',' && depth === 0) {
      out.push(cur)
      cur = ''
    } else cur += ch
  }
  out.push(cur)
  return out
}

export function hostKey(h: HostSpec): string {
  return `${h.host}:${h.port}`
}

/** What the planner knows of a host when it orders connection attempts. */
export interface HostKnowledge {
  role?: ServerRole
  /** Known unreachable or dead (monitor or kernel verdict). */
  down?: boolean
  fenced?: boolean
  /** Outside the primary's region under a single-region policy. */
  elsewhere?: boolean
  /** Slow or lossy by its sockets' TCP_INFO (judge/routing-rules.ts): still answering, so tried, but after the healthy hosts. */
  degraded?: boolean
}

export interface Attempt extends HostSpec {
  /** The role this attempt must find ('standby-first-pass' is prefer-standby's first pass). */
  require: TargetSessionAttrs | 'standby-first-pass'
}

/**
 * The order in which to try hosts: those known to satisfy first, unknown next, then the ones known not
 * to (a role can change) and the ones known down or fenced last. libpq tries in list order; knowledge only
 * moves a host that would fail anyway to the back. prefer-standby makes two passes, as libpq does.
 *
 * Health orders the hosts that would do: a degraded host goes after every healthy host that satisfies or
 * may satisfy, and before the ones known to fail (wrong role, down, elsewhere, fenced) — slow, not dead,
 * so never excluded. It never overrides a role or region preference (prefer-standby's standby pass
 * still comes first). Otherwise the order is stable (list order, or the shuffle of load_balance_hosts).
 */
export function planAttempts(hosts: HostSpec[], attrs: TargetSessionAttrs, lb: LoadBalanceHosts, know: (h: HostSpec) => HostKnowledge, random: () => number = Math.random): Attempt[] {
  const list = lb === 'random' ? shuffle(hosts, random) : hosts.slice()
  const known = list.map(know)
  const pass = (require: Attempt['require']): Attempt[] => {
    // [tier, role, health]: tier 0 healthy and may do, 1 degraded and may do, 2 wrong role, 3 down or
    // elsewhere, 4 fenced; within a tier known-good before unknown, then healthy before degraded.
    const rank = (k: HostKnowledge): [number, number, number] => {
      const sick = k.degraded ? 1 : 0
      if (k.fenced) return [4, 0, sick]
      if (k.down || k.elsewhere) return [3, 0, sick]
      if (k.role && !satisfies(require, k.role)) return [2, 0, sick]
      return [sick, k.role ? 0 : 1, 0]
    }
    return list
      .map((h, i) => ({ h, i, r: rank(known[i]) }))
      .sort((x, y) => x.r[0] - y.r[0] || x.r[1] - y.r[1] || x.r[2] - y.r[2] || x.i - y.i)
      .map(({ h }) => ({ ...h, require }))
  }
  return attrs === 'prefer-standby' ? [...pass('standby-first-pass'), ...pass('any')] : pass(attrs)
}

function shuffle<T>(xs: T[], random: () => number): T[] {
  const a = xs.slice()
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[a[i], a[j]] = [a[j], a[i]]
  }
  return a
}

/**
 * pg's own connection-string parser (pg-connection-string, resolved from pg's install so both agree on
 * every parameter), for the places where we must override host and port: a connection string wins over
 * separate fields in pg.
 */
export function parseConnectionString(connectionString: string): Record<string, unknown> {
  const path = require.resolve('pg-connection-string', { paths: [dirname(require.resolve('pg'))] })
  const { parse } = require(path) as { parse(s: string): Record<string, unknown> }
  return { ...parse(connectionString) }
}
