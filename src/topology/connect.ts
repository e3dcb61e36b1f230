/**
 * How a new pooled client picks its host: the attempt plan (libpq order, improved by what the topology
 * knows), the config for the attempt (one host out of the list, the guard's resolver), and the check after
 * login (role against targetSessionAttrs, fencing). Failed attempts move to the next host; the caller
 * hears only once, with NoHostAvailableError naming every host tried and why it was rejected.
 */
import type { Client } from 'pg'
import { HostFencedError, NoHostAvailableError, WrongRoleError } from '../errors'
import { clientConfigFor, lookupStream, type PoolHooks } from '../pool/pg-adapter'
import { type Attempt, describeRole, type HostSpec, satisfies, type ServerRole, type TargetSessionAttrs } from './hosts'
import type { Lookup, Topology } from './topology'

export interface ConnectDeps {
  /** The pool's options with a multi-host connection string reduced to its first host (pg cannot parse it). */
  baseOptions: object
  topology: Topology
  hosts: HostSpec[]
  targetSessionAttrs: TargetSessionAttrs
  /** The resolver hook, or null to let Node resolve. */
  lookup: Lookup | null
  attemptTimeoutMs: number
  singleRegion: boolean
  /** The role the session reported at login (ParameterStatus), or null (PostgreSQL < 14). */
  reportedRole(client: Client): ServerRole | null
  /** Asks the server (PostgreSQL < 14): pg_is_in_recovery() and transaction_read_only. */
  queryRole(client: Client): Promise<ServerRole>
  /** The attempt a client was made for (recorded when it was created). */
  attemptOf(client: Client): Attempt | undefined
}

export interface ConnectPlanner {
  hooks: Partial<PoolHooks>
  /** The attempt whose client is being constructed right now. */
  current(): Attempt
}

/** Pool hooks for several hosts, a role requirement or a resolver hook; undefined when pg's own path will do. */
export function connectPlanner(d: ConnectDeps): ConnectPlanner | undefined {
  const multi = d.hosts.length > 1
  const checksRole = d.targetSessionAttrs !== 'any' || multi
  if (!multi && !checksRole && !d.lookup) return undefined
  let current: Attempt = { ...d.hosts[0], require: d.targetSessionAttrs }
  const hooks: Partial<PoolHooks> = {
    clientConfig: (config) => {
      const overrides: Record<string, unknown> = {}
      if (d.lookup && config.stream === undefined) overrides.stream = lookupStream(d.lookup)
      return clientConfigFor(d.baseOptions, current.host, current.port, overrides)
    },
  }
  if (checksRole) {
    hooks.afterConnect = async (client) => {
      const attempt = d.attemptOf(client) ?? current
      const state = d.topology.state(attempt.host, attempt.port)
      if (state?.fenced) throw new HostFencedError(attempt.host, attempt.port, state.fenced)
      const role = d.reportedRole(client) ?? (await d.queryRole(client))
      if (!satisfies(attempt.require, role)) {
        const wanted = attempt.require === 'standby-first-pass' ? 'a standby (prefer-standby, first pass)' : `target_session_attrs=${attempt.require}`
        throw new WrongRoleError(attempt.host, attempt.port, wanted, describeRole(role))
      }
    }
  }
  if (multi) {
    hooks.attemptTimeoutMs = d.attemptTimeoutMs
    hooks.plan = () => d.topology.plan(d.singleRegion).map((a) => ({ target: a, label: `${a.host}:${a.port}` }))
    hooks.attempting = (target) => {
      current = target as Attempt
    }
    hooks.attemptsFailed = (failures) =>
      new NoHostAvailableError(
        d.targetSessionAttrs,
        failures.map((f) => {
          const i = f.label.lastIndexOf(':')
          return { host: f.label.slice(0, i), port: Number(f.label.slice(i + 1)), rejected: f.error.message.replace(/^pg-pool-guard: /, '') }
        }),
        failures[failures.length - 1]?.error
      )
  }
  return { hooks, current: () => current }
}
