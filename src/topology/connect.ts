/**
 * How a new pooled client picks its host: the attempt plan (libpq order, improved by what the topology
 * knows), the config for the attempt (one host out of the list, the guard's resolver), and the check after
 * login (role against targetSessionAttrs, fencing). Failed attempts move to the next host; the caller
 * hears only once, with NoHostAvailableError naming every host tried and why it was rejected.
 *
 * Data flows one way: the plan names an attempt, the adapter builds the client for it and remembers which
 * (attemptOf), the check reads that and the role the session reported (reportedRoleOf). Nothing here reads
 * the guard's registry.
 */
import type { Client } from 'pg'
import { HostFencedError, NoHostAvailableError, WrongRoleError } from '../errors'
import { attemptOf, clientConfigFor, lookupStream, type PoolHooks, reportedRoleOf } from '../pg/adapter'
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
  singleRegion: boolean
  /** Asks the server (PostgreSQL < 14, which reports no in_hot_standby): pg_is_in_recovery() and transaction_read_only. */
  queryRole(client: Client): Promise<ServerRole>
}

/** Pool hooks for several hosts, a role requirement or a resolver hook; undefined when pg's own path will do. */
export function connectPlanner(d: ConnectDeps): Partial<PoolHooks> | undefined {
  const multi = d.hosts.length > 1
  const checksRole = d.targetSessionAttrs !== 'any' || multi
  if (!multi && !checksRole && !d.lookup) return undefined
  const single: Attempt = { ...d.hosts[0], require: d.targetSessionAttrs }
  const hooks: Partial<PoolHooks> = {
    clientConfig: (config, target) => {
      const attempt = (target as Attempt | undefined) ?? single
      const overrides: Record<string, unknown> = {}
      if (d.lookup && config.stream === undefined) overrides.stream = lookupStream(d.lookup)
      return clientConfigFor(d.baseOptions, attempt.host, attempt.port, overrides)
    },
  }
  if (checksRole) {
    hooks.afterConnect = async (client) => {
      const attempt = (attemptOf(client) as Attempt | undefined) ?? single
      const state = d.topology.state(attempt.host, attempt.port)
      if (state?.fenced) throw new HostFencedError(attempt.host, attempt.port, state.fenced)
      const role = reportedRoleOf(client) ?? (await d.queryRole(client))
      if (!satisfies(attempt.require, role)) {
        const wanted = attempt.require === 'standby-first-pass' ? 'a standby (prefer-standby, first pass)' : `target_session_attrs=${attempt.require}`
        throw new WrongRoleError(attempt.host, attempt.port, wanted, describeRole(role))
      }
    }
  }
  if (multi) {
    hooks.plan = () => d.topology.plan(d.singleRegion).map((a) => ({ target: a, label: `${a.host}:${a.port}` }))
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
  return hooks
}
