/**
 * How a new pooled client picks its host: the attempt plan (libpq order, improved by what the topology
 * knows), the config for the attempt (one host out of the list, the guard's resolver), and the check after
 * login (role against targetSessionAttrs, fencing). Among the hosts that would do, healthy ones are tried
 * before degraded ones (the guard's `isDegraded` fact). Failed attempts move to the next host; the caller
 * hears only once, with NoHostAvailableError naming every host tried and why it was rejected.
 *
 * Data flows one way: the plan names an attempt, the adapter builds the client for it and remembers which
 * (attemptOf), the check reads that and the role the session reported (reportedRoleOf). Nothing here reads
 * the guard's registry.
 */
import type { Client } from 'pg'
import { ErrorCodes, HostDownError, HostFencedError, NoHostAvailableError, WrongRoleError } from '../errors'
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
  /** When every host is down, a new connection waits this long for one to answer again before it fails. */
  waitForHostMs: number
  /** The guard's health fact per host key ("host:port"): degraded hosts are tried after the healthy ones. */
  isDegraded?(hostKey: string): boolean
}

/**
 * Pool hooks: every pool gets `admit` (a connect to hosts all judged down fails at once, coded); several
 * hosts, a role requirement or a resolver hook add the plan, the per-attempt config and the check.
 */
export function connectPlanner(d: ConnectDeps): Partial<PoolHooks> {
  const multi = d.hosts.length > 1
  const checksRole = d.targetSessionAttrs !== 'any' || multi
  const single: Attempt = { ...d.hosts[0], require: d.targetSessionAttrs }
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
  if (!multi && !checksRole && !d.lookup) return { admit }
  const hooks: Partial<PoolHooks> = {
    admit,
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
  return hooks
}
