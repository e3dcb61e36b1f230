/**
 * How a new pooled client picks its host: the attempt plan (libpq order, improved by what the topology
 * knows), the config for the attempt (one host out of the list, the guard's resolver), and the check after
 * login (role against targetSessionAttrs, fencing). Among the hosts that would do, healthy ones are tried
 * before degraded ones (the guard's `isDegraded` fact). Failed attempts move to the next host; the caller
 * hears only once, with NoHostAvailableError naming every host tried and why it was rejected.
 *
 * Data flows one way: the plan names an attempt, the guarded Client class builds the client for it and the
 * client's slot remembers which (attemptOf), the check reads that and the role the session reported (reportedRoleOf). Nothing here reads
 * the guard's registry.
 */
import type { Client } from 'pg'
import { ErrorCodes, HostDownError, HostFencedError, NoHostAvailableError, WrongRoleError } from '../errors'
import { whenIdle } from '../pg/in-flight'
import { backendPidOf, reportedRoleOf, slotOf } from '../pg/internals'
import type { PoolHooks } from '../pg/hooks'
import { parseConnectionString } from './hosts'
import type { Attempt, HostSpec, ServerRole, TargetSessionAttrs } from './hosts'
import type { SessionIdentity } from './identity'
import { lookupStream } from './lookup'
import type { Lookup, Topology } from './topology'

/** What is known when a session has just logged in: what the login check (judge/login-rules.ts) decides on. */
export interface LoginFacts {
  /** The configured host:port the attempt was for. */
  hostKey: string
  require: TargetSessionAttrs | 'standby-first-pass'
  role: ServerRole
  /** The server reached (read at login), or null where it could not be read. */
  server: { id: string; fenced: string | null; where: string } | null
  pooler: boolean
  /** The host's own fencing, for a session whose server is unknown. */
  hostFenced: string | null
}

export type LoginDecision =
  | { ok: true }
  | { ok: false; refuse: 'fenced'; why: string }
  | { ok: false; refuse: 'wrong-role'; found: string; wanted: string }

/** The first wait before a refused login to the one host is tried again (then half the time waited so far). */
const RETRY_FIRST_MS = 50

export interface ConnectDeps {
  /** The pool's options with a multi-host connection string reduced to its first host (pg cannot parse it). */
  baseOptions: object
  topology: Topology
  hosts: HostSpec[]
  targetSessionAttrs: TargetSessionAttrs
  /** The resolver hook, or null to let Node resolve. */
  lookup: Lookup | null
  singleRegion: boolean
  /** Asks the server (PostgreSQL < 14, which reports no in_hot_standby): pg_is_in_recovery() and transaction_read_only. */
  queryRole(client: Client): Promise<ServerRole>
  /** When every host is down, a new connection waits this long for one to answer again before it fails. */
  waitForHostMs: number
  /** The guard's health fact per host key ("host:port"): degraded hosts are tried after the healthy ones. */
  isDegraded?(hostKey: string): boolean
  /** Read the identity before the pool takes a session, always (resolveInDoubt needs each session's server and backend). */
  identityAtLogin?: boolean
  /** Clients are held by their owner from their connect (standalone clients), not handed out and given back by a pool. */
  ownerHeld?: boolean
  /**
   * The check after login, the judge's (judge/login-rules.ts through the guard's scheduler): a refused
   * session is ended by the guard's evictor, and its connect fails with the check's error (below).
   */
  decideLogin(client: Client, facts: LoginFacts): LoginDecision
  /**
   * After login: the session's identity (null where it was not read: a server that would not say, a known
   * pooler), and whether a pooler answers in front. The guard records both on the client's record.
   */
  sawIdentity?(client: Client, identity: SessionIdentity | null, pooler: boolean, at: number): void
}

/**
 * Pool hooks: every pool gets `admit` (a connect to hosts all judged down fails at once, coded); several
 * hosts, a role requirement or a resolver hook add the plan, the per-attempt config and the check.
 */
export function connectPlanner(d: ConnectDeps): Partial<PoolHooks> {
  const multi = d.hosts.length > 1
  const checksRole = d.targetSessionAttrs !== 'any' || multi
  const single: Attempt = { ...d.hosts[0], require: d.targetSessionAttrs }
  /** The attempt the client was built for (its slot), or the one host's where nothing was planned. */
  const attemptOf = (client: Client): Attempt => (slotOf(client)?.attempt as Attempt | undefined) ?? single
  const allDown = (): boolean => d.hosts.every((h) => d.topology.state(h.host, h.port)?.down)
  const downError = (): Error => {
    const states = d.hosts.map((h) => d.topology.state(h.host, h.port))
    if (!multi) return new HostDownError(single.host, single.port, states[0]?.down ?? 'down')
    return new NoHostAvailableError(
      d.targetSessionAttrs,
      d.hosts.map((h, i) => ({ host: h.host, port: h.port, rejected: `down: ${states[i]?.down}`, code: ErrorCodes.HOST_DOWN }))
    )
  }
  // Connections waiting for a host to come back; one topology listener serves them all.
  const waiting = new Set<() => void>()
  d.topology.on('change', () => {
    if (waiting.size > 0 && !allDown()) for (const wake of [...waiting]) wake()
  })
  const admit = (): Error | Promise<Error | undefined> | undefined => {
    if (!allDown()) return undefined
    if (d.waitForHostMs <= 0) return downError()
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        waiting.delete(done)
        resolve(allDown() ? downError() : undefined)
      }
      const timer = setTimeout(done, d.waitForHostMs)
      timer.unref()
      waiting.add(done)
    })
  }
  const hooks: Partial<PoolHooks> = { admit }
  if (multi || checksRole || d.lookup) {
    hooks.clientConfig = (config, target) => {
      const attempt = (target as Attempt | undefined) ?? single
      const overrides: Record<string, unknown> = {}
      if (d.lookup && config.stream === undefined) overrides.stream = lookupStream(d.lookup)
      return clientConfigFor(d.baseOptions, attempt.host, attempt.port, overrides)
    }
  }
  // Every new session: which server it reached (one round trip, identity.ts) — behind a VIP or a load
  // balancer the address says nothing — then the check: not a fenced server, the role asked for.
  const readIdentity = async (client: Client, attempt: Attempt): Promise<SessionIdentity | null> => {
    const state = d.topology.state(attempt.host, attempt.port)
    // Through a pooler a session has no server of its own, and the query would wait for one of the
    // pooler's (during a server restart behind it: for server_login_retry), where pg.Pool's logins do not.
    const key = `${attempt.host}:${attempt.port}`
    const identity = state?.pooler === true ? null : await d.topology.identity.read(client, backendPidOf(client), d.topology.wantsStandbys(key))
    const at = Date.now()
    d.sawIdentity?.(client, identity, identity?.pooler ?? state?.pooler === true, at)
    if (identity) d.topology.observeLogin(key, identity, at)
    return identity
  }
  hooks.afterConnect = (client) => {
    const attempt = attemptOf(client)
    if (!checksRole && !d.identityAtLogin && !d.topology.anyFenced()) {
      // Nothing to decide at login (no role asked for, no server fenced that the login could have
      // reached): connect() resolves at login as pg's does, and the identity is read later (identityLater)
      // — a pooled client's when it is first back in the pool, one its owner holds only once the judge asks
      // for it (its address seen leading to more than one server, or a server fenced), so its session's
      // last statement stays the owner's own (pg_stat_activity) where nothing needs it.
      return undefined
    }
    return checkAtLogin(client, attempt)
  }
  const checkAtLogin = async (client: Client, attempt: Attempt): Promise<void> => {
    const state = d.topology.state(attempt.host, attempt.port)
    const key = `${attempt.host}:${attempt.port}`
    const identity = await readIdentity(client, attempt)
    if (!checksRole && !identity) return
    const server = identity ? d.topology.servers.get(identity.server.id) : undefined
    const role = identity?.server.role ?? reportedRoleOf(client) ?? (await d.queryRole(client))
    const decision = d.decideLogin(client, {
      hostKey: key,
      require: checksRole ? attempt.require : 'any',
      role,
      server: identity ? { id: identity.server.id, fenced: server?.fenced ?? null, where: where(identity) } : null,
      pooler: identity?.pooler ?? state?.pooler === true,
      hostFenced: state?.fenced ?? null,
    })
    if (decision.ok) return
    if (decision.refuse === 'fenced') throw new HostFencedError(attempt.host, attempt.port, decision.why)
    throw new WrongRoleError(attempt.host, attempt.port, decision.wanted, decision.found)
  }
  if (!multi) {
    // Behind a VIP the login may land on a fenced server until the address is switched: try again for up
    // to waitForHostMs (backing off from RETRY_FIRST_MS), as a new connection to a host marked down waits.
    hooks.retryAfter = (err, elapsedMs) => {
      if ((err as { code?: unknown }).code !== ErrorCodes.HOST_FENCED || elapsedMs >= d.waitForHostMs) return undefined
      return Math.min(d.waitForHostMs - elapsedMs, Math.max(RETRY_FIRST_MS, elapsedMs / 2))
    }
  }
  if (multi) {
    hooks.plan = () => d.topology.plan(d.singleRegion, undefined, d.isDegraded).map((a) => ({ target: a, label: `${a.host}:${a.port}` }))
    hooks.attemptsFailed = (failures) =>
      new NoHostAvailableError(
        d.targetSessionAttrs,
        failures.map((f) => {
          const i = f.label.lastIndexOf(':')
          return { host: f.label.slice(0, i), port: Number(f.label.slice(i + 1)), rejected: f.error.message.replace(/^pg-pool-guard: /, ''), code: (f.error as { code?: string }).code }
        }),
        failures[failures.length - 1]?.error
      )
  }
  hooks.identityLater = (client) => {
    const attempt = attemptOf(client)
    const read = (): void => void readIdentity(client, attempt).catch(() => {})
    // A pooled client is idle in its pool; one its owner holds is asked the first moment it is idle,
    // outside any transaction block.
    if (d.ownerHeld) whenIdle(client, read)
    else read()
  }
  return hooks
}

function where(identity: SessionIdentity): string {
  const s = identity.server
  return `the server at ${s.address ?? '?'}:${s.port ?? '?'} (timeline ${s.timeline ?? '?'})`
}

/**
 * A pg.Client config for one host of the pool: the pool's options copied with their descriptors (pg-pool
 * keeps the password non-enumerable, and a spread would drop it), the connection string parsed into fields
 * (it would override host and port), then `host`, `port` and `overrides` applied.
 */
export function clientConfigFor(poolOptions: object, host: string, port: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, d] of Object.entries(Object.getOwnPropertyDescriptors(poolOptions))) {
    Object.defineProperty(out, key, { ...d, configurable: true, writable: true })
  }
  const cs = out.connectionString
  delete out.connectionString
  if (typeof cs === 'string') Object.assign(out, parseConnectionString(cs))
  return Object.assign(out, { host, port }, overrides)
}
