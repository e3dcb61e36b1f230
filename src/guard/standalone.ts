/**
 * Clients outside any pg.Pool — Sequelize's and knex's own pools, pg-boss's LISTEN client, an app's own
 * pg.Client — under one process-wide standalone guard. Clients are grouped by where they connect (host,
 * port, database and user, as pg resolved them); each group is a ClientSet, which speaks the small part
 * of pg-pool's interface the guard reads (its client list, removal, the pool events), watched by a Guard
 * of its own. So a standalone client gets what a pooled one gets: hardening, tracking, kernel and probe
 * verdicts, FATAL and connect-deadline verdicts, the host monitor (roles, timelines, fencing), coded
 * errors, snapshot rows and metrics (pool name "standalone host:port/database").
 *
 * A standalone client is 'in-use' from its connect to its end: its owner holds it. For the verdict table
 * it is idle while no query is in flight. Acting on one always means destroying its socket with the coded
 * error: its owner hears 'error' and drops the client, as it does for any broken connection, and a query
 * sent after that gets the same coded error.
 */
import { EventEmitter } from 'node:events'
import pg from 'pg'
import type { Client } from 'pg'
import { WarningCodes, warnOnce } from '../errors'
import { VERDICTS } from '../judge/verdicts'
import type { GuardOptions } from '../options'
import { connectionParametersOf, connectStageOf, endQuietly, failConnect, hasQueryInFlight, onConnectionEnd } from '../pg/internals'
import { HookBinding, type PoolHooks } from '../pg/hooks'
import { destroyInUse, queriesOf } from '../pg/in-flight'
import { Guard, type GuardEvents } from './guard'
import type { ConnSnapshot } from './registry'

/** How long a group with no clients keeps its guard (and its host monitor's connection) before it stops. */
export const STANDALONE_LINGER_MS = 30_000

/** The clients of one group, seen by their Guard as a pool that holds them all and queues nobody. */
class ClientSet extends EventEmitter {
  readonly _clients: Client[] = []
  readonly _pendingQueue: never[] = []
  readonly binding = new HookBinding()
  readonly ending = false
  readonly ended = false

  /** `options`: the config the guard's own connections (monitor, probes) to this group's server use. */
  constructor(readonly options: Record<string, unknown>) {
    super()
  }

  /** No client waits in a pool: each is held by its owner (registry state 'in-use'). */
  get _idle(): { client: Client }[] {
    return []
  }

  /** For the metrics: clients with no query in flight. */
  get idleCount(): number {
    return this._clients.filter((c) => !hasQueryInFlight(c)).length
  }

  get totalCount(): number {
    return this._clients.length
  }

  get waitingCount(): number {
    return 0
  }

  _remove(client: Client): void {
    const i = this._clients.indexOf(client)
    if (i < 0) return
    this._clients.splice(i, 1)
    this.emit('remove', client)
  }

  _pulseQueue(): void {}
}

/** One group: its clients, their guard, and the timer that stops the guard once the group is empty. */
interface Group {
  key: string
  set: ClientSet
  guard: Guard
  options: GuardOptions | undefined
  linger: NodeJS.Timeout | undefined
}

const EVENTS = ['evict', 'probe', 'topology', 'health', 'replication', 'leak'] as const

/**
 * The process-wide standalone guard: every group's Guard, one snapshot of all standalone clients, and
 * the events of every group (evict, probe, topology, health, replication, leak) re-emitted here.
 */
export class StandaloneGuard extends EventEmitter<GuardEvents> {
  private readonly groups = new Map<string, Group>()
  private readonly joined = new WeakMap<Client, Group>()

  /** One Guard per server (host, port, database, user) that standalone clients connect to. */
  guards(): Guard[] {
    return [...this.groups.values()].map((g) => g.guard)
  }

  /** The guard watching this client, or undefined if it is not a standalone guarded client. */
  guardOf(client: Client): Guard | undefined {
    const g = this.joined.get(client)
    return g && this.groups.get(g.key) === g ? g.guard : undefined
  }

  /** Every standalone client's snapshot row, with the group's pool name. */
  snapshot(): (ConnSnapshot & { pool: string })[] {
    return this.guards().flatMap((g) => g.snapshot().map((row) => ({ ...row, pool: g.poolName })))
  }

  /**
   * Adds a client to its group's guard (made on first use, with `options`), however far its connect is.
   * `config`: what the client was built with, if known (a custom `stream` factory is kept for the guard's
   * own connections). Returns the guard's connect hooks (its afterConnect checks the role).
   */
  join(client: Client, options: GuardOptions | undefined, config?: unknown): PoolHooks | undefined {
    if (this.joined.has(client)) return this.joined.get(client)!.set.binding.hooks
    const stage = connectStageOf(client)
    if (stage === 'ended') return undefined
    const group = this.groupFor(client, options, config)
    this.joined.set(client, group)
    if (group.linger) clearTimeout(group.linger)
    group.linger = undefined
    const { set, guard } = group
    const enter = (connected: boolean): void => {
      set._clients.push(client)
      guard.adopt(client, connected)
      // Followed on the client's Connection: an owner may removeAllListeners() on its client before
      // end() (pg-boss does, with its LISTEN client).
      onConnectionEnd(client, () => set._remove(client))
    }
    if (stage === 'connected') enter(true)
    else if (stage === 'connecting') client.once('connect', () => enter(true))
    else {
      enter(false)
      // pg emits 'connect' once the session is ready: in use from then on, as pg-pool would hand it out.
      client.once('connect', () => guard.connected(client))
    }
    return set.binding.hooks
  }

  private groupFor(client: Client, options: GuardOptions | undefined, config: unknown): Group {
    const p = connectionParametersOf(client)
    const key = `${String(p.user)}@${String(p.host)}:${String(p.port)}/${String(p.database)}`
    let existing = this.groups.get(key)
    if (existing && existing.set._clients.length === 0 && options !== undefined && !sameOptions(options, existing.options)) {
      // An empty group waiting to stop: the new options replace it.
      this.drop(existing)
      existing = undefined
    }
    if (existing) {
      if (options !== undefined && !sameOptions(options, existing.options)) {
        warnOnce(
          WarningCodes.STANDALONE_OPTIONS_IGNORED,
          `standalone clients of ${String(p.host)}:${String(p.port)} already have a guard with other options; these are ignored (the first client's options apply to all)`,
          key
        )
      }
      return existing
    }
    const set = new ClientSet(templateOf(p, config))
    const guard = new Guard(set as unknown as pg.Pool, options, {
      binding: set.binding,
      namePrefix: 'standalone ',
      actions: {
        isIdle: (c) => !hasQueryInFlight(c),
        removeIdle: (c, err) => destroyInUse(c, err),
        destroy: destroyInUse,
        queriesOf,
        retire: (c, err) => {
          // The server said the session is over (FATAL, 25006, 57P0x, class 08) and the query has its
          // error already: end the socket now, so the owner's pool hears 'error' before it can hand the
          // client out again. Otherwise once the query in flight has settled (pg emits 'drain').
          if (VERDICTS[err.reason].source === 'server') process.nextTick(() => destroyInUse(c, err))
          else c.once('drain', () => destroyInUse(c, err))
        },
        failConnect,
        // The check after login refused it: its connect fails with the check's error.
        refuse: endQuietly,
      },
    })
    const forward = guard as unknown as EventEmitter
    for (const name of EVENTS) forward.on(name, (e: unknown) => (this as unknown as EventEmitter).emit(name, e))
    const group: Group = { key, set, guard, options, linger: undefined }
    set.on('remove', () => {
      if (set._clients.length > 0 || group.linger) return
      group.linger = setTimeout(() => {
        group.linger = undefined
        if (set._clients.length === 0) this.drop(group)
      }, STANDALONE_LINGER_MS)
      group.linger.unref()
    })
    this.groups.set(key, group)
    return group
  }

  /** Stops every group's guard (tests; a process about to exit need not call it: every timer is unref'd). */
  stopAll(): void {
    for (const g of [...this.groups.values()]) this.drop(g)
  }

  private drop(group: Group): void {
    if (group.linger) clearTimeout(group.linger)
    group.linger = undefined
    if (this.groups.get(group.key) === group) this.groups.delete(group.key)
    group.guard.stop()
  }
}

/**
 * The config of the guard's own connections (host monitor, probes) to a group's server: what pg resolved
 * for the first client (so connection strings and PG* variables count), the password kept non-enumerable,
 * and the client's own stream factory if it had one (a cloud connector, a proxy).
 */
function templateOf(p: Record<string, unknown>, config: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = { host: p.host, port: p.port, user: p.user, database: p.database }
  if (p.ssl !== undefined && p.ssl !== false) out.ssl = p.ssl
  Object.defineProperty(out, 'password', { value: p.password, enumerable: false, writable: true, configurable: true })
  const stream = (config as { stream?: unknown } | null | undefined)?.stream
  if (typeof stream === 'function') out.stream = stream
  return out
}

/** Whether two clients' guard options say the same: plain values by content, objects (a MeterProvider, a lookup hook) by identity. */
function sameOptions(a: GuardOptions | undefined, b: GuardOptions | undefined): boolean {
  const x = (a ?? {}) as Record<string, unknown>
  const y = (b ?? {}) as Record<string, unknown>
  const keys = new Set([...Object.keys(x), ...Object.keys(y)])
  return [...keys].every((k) => x[k] === y[k] || (isPlain(x[k]) && isPlain(y[k]) && JSON.stringify(x[k]) === JSON.stringify(y[k])))
}

function isPlain(v: unknown): boolean {
  return Array.isArray(v) || (typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype)
}
