/**
 * The wiring of one guard: builds its parts and connects them, in the direction the data flows.
 *
 *   pool wrappers, pool and client events --> Lifecycle --> Registry (one record per client, one state)
 *   Topology (monitors, watches, DNS, address checks, logins) --facts--> \
 *   HostProbes (host probes, finished)                           --facts-->  Scheduler: facts --> judge (pure)
 *   Kernel port (TCP_INFO, /proc)                            --facts--> /          act  <-- decisions
 *                                                                                    |
 *                          Evictor (the only way a client of the pool's owner dies) <-'--> topology, probes
 *
 * Nothing here decides anything; guard.ts answers questions about the parts.
 */
import type { MeterProvider } from '@opentelemetry/api'
import type { Client, Pool as PgPool } from 'pg'
import { ErrorCodes, PoolGuardError } from '../errors'
import { statementKinds } from '../judge/outcome-rules'
import type { KernelPort } from '../kernel/port'
import type { GuardOptions, ResolvedGuardOptions } from '../options'
import { destroyInUse, queriesOf, xidOf } from '../pg/in-flight'
import { canSeeInto, clientsOf, endQuietly, failConnect, isPoolTimeout, removeIdle, retireOnRelease } from '../pg/internals'
import type { PoolHooks } from '../pg/hooks'
import { instrumentConnect, patchPool } from '../pg/pool-wrappers'
import { PoolMetrics, uniquePoolName } from '../telemetry/metrics'
import { connectPlanner } from '../topology/connect'
import type { Attempt } from '../topology/hosts'
import { Regions } from '../topology/regions'
import { defaultLookup, Topology } from '../topology/topology'
import { type EvictionActions, type EvictionEvent, Evictor } from './evictor'
import type { Attachment, GuardEvents } from './events'
import { Housekeeping } from './housekeeping'
import { InDoubtResolver, inDoubtWrite } from './in-doubt'
import { Lifecycle, unguardedWarning } from './lifecycle'
import { poolView } from './metrics-view'
import { queryRole, readPoolConfig } from './pool-config'
import { HostProbes } from './host-probes'
import { type ConnRecord, type ConnState, Registry } from './registry'
import { Scheduler } from './scheduler'
import { holdCoarseClock } from '../util/time'

/** A host probe's deadline is at least this many times the host's measured login time (SCRAM is ~4 round trips). */
const PROBE_LOGIN_MULTIPLE = 4

export interface Parts {
  poolName: string
  releaseName(): void
  /** Lets go of the hot path's coarse clock (util/time.ts). */
  releaseClock(): void
  registry: Registry
  topology: Topology
  scheduler: Scheduler
  housekeeping: Housekeeping
  metrics: PoolMetrics
  lifecycle: Lifecycle
  inDoubt: InDoubtResolver | undefined
  hostProbes: HostProbes
  passStats: { passes: number; passMs: number; procScans: number; procScanMs: number }
}

export type Emit = <K extends keyof GuardEvents>(event: K, ...args: GuardEvents[K]) => boolean

/**
 * `onEnding`: pool.end() was called; `onEnded`: a record ended (the guard stops once the pool ended and
 * its last record is gone).
 */
export function assemble(
  pool: PgPool, o: ResolvedGuardOptions, given: GuardOptions | undefined, attachment: Attachment, kernel: KernelPort,
  emit: Emit, onEnding: () => void, onEnded: () => void
): Parts {
  const { poolOptions, hosts, targetSessionAttrs, loadBalanceHosts, defaultName, connectDeadlineMs, monitorConfig } = readPoolConfig(pool, given, o)
  /** The clients are held by their owner from their connect (standalone), not handed out by a pg-pool. */
  const ownerHeld = attachment.actions !== undefined
  const named = uniquePoolName(o.poolName ?? `${attachment.namePrefix ?? ''}${defaultName}`)
  const metrics: PoolMetrics = new PoolMetrics(named.name, o.metrics, o.meterProvider as MeterProvider | null, () => poolView(pool, registry.records(), scheduler, topology, o.minIdle), o.zone)
  const regions = new Regions(o.regions)
  const singleRegion = o.singleRegion ?? (regions.configured && (targetSessionAttrs === 'read-write' || targetSessionAttrs === 'primary'))
  const topology = new Topology({
    hosts, targetSessionAttrs, regions, loadBalanceHosts,
    lookup: o.lookup ?? defaultLookup,
    topologyIntervalMs: o.topologyIntervalMs,
    dnsIntervalMs: o.dnsIntervalMs,
    addressCheckIntervalMs: o.addressCheckIntervalMs,
    discoverStandbys: o.discoverStandbys ?? (hosts.length === 1 && !hosts[0].host.startsWith('/')),
    holdsSocketsTo: (key) => registry.records().some((r) => r.state !== 'connecting' && r.hostKey === key),
    timeoutMs: o.probeTimeoutMs,
    configFor: monitorConfig,
  })

  /** Per configured host:port, how long logins take here (EWMA, ms): host probe deadlines follow it. */
  const loginMs = new Map<string, number>()
  const transitioned = (rec: ConnRecord, from: ConnState, now: number): void => {
    const to = rec.state
    if (from === 'connecting' && (to === 'idle' || to === 'in-use')) {
      const ms = now - rec.createdAt
      metrics.createTime(ms)
      const key = rec.hostKey
      const before = loginMs.get(key)
      loginMs.set(key, before === undefined ? ms : before + (ms - before) / 4)
    }
    if (to === 'ended') onEnded()
  }
  const registry: Registry = new Registry(
    { transitioned, connectDeadline: (rec, now, ms) => lifecycle.connectDeadline(rec, now, ms) },
    () => connectDeadlineMs
  )
  // The use-time histogram on every release, only while an SDK reads it.
  const useTime = (): void => {
    lifecycle.usePreciseClock()
    registry.hooks.released = (rec, now) => {
      if (rec.lastAcquiredAt !== null) metrics.useTime(now - rec.lastAcquiredAt)
    }
  }

  const releaseClock = holdCoarseClock()
  const sockopt = kernel.sockopt()
  const inDoubt = o.resolveInDoubt ? new InDoubtResolver({ poolOptions, topology, timeoutMs: o.probeTimeoutMs, onResolved: (r) => metrics.resolved(r) }) : undefined
  const evictor: Evictor = new Evictor(
    registry,
    attachment.actions ?? {
      removeIdle: (client) => removeIdle(pool, client),
      destroy: destroyInUse,
      queriesOf,
      retire: retireOnRelease,
      failConnect,
      refuse: endQuietly,
    },
    o.topologyEvictInUse,
    metrics,
    (e: EvictionEvent) => emit('evict', e),
    {
      // An RST instead of a FIN: no unacknowledged COMMIT leaves an orphaned socket to arrive after a heal.
      reset: sockopt.ok ? (fd) => void sockopt.sockopt.resetOnClose(fd) : undefined,
      inDoubt: inDoubt && ((rec, outcome, text) => {
        const commit = text !== null && statementKinds(text).includes('commit')
        const w = inDoubtWrite(rec, xidOf(rec.client), commit)
        if (outcome === 'unknown') return w ? inDoubt.track(w) : async () => 'unknown'
        if (outcome === 'rolled-back' && w) inDoubt.orphan(w)
        return undefined
      }),
    }
  )
  const passStats = { passes: 0, passMs: 0, procScans: 0, procScanMs: 0 }
  const hostProbes = new HostProbes(
    poolOptions,
    (hostKey) => Math.max(o.probeTimeoutMs, PROBE_LOGIN_MULTIPLE * (loginMs.get(hostKey) ?? 0)),
    (r) => {
      metrics.probe(r.alive)
      emit('probe', r)
      scheduler.wake(true) // act on a failed probe at once
    },
    // A recovery probe's answer is a fact: the judge marks the host up on the next tick, now.
    (hostKey) => {
      topology.noteAnswered(hostKey, Date.now())
      scheduler.wake(false)
    }
  )
  const scheduler: Scheduler = new Scheduler({
    registry, kernel, options: o, topology, singleRegion, evictor, hostProbes,
    beforeTick: () => metrics.maybeBind(), // an SDK registered after this pool: report from now on
    onHealth: (t) => emit('health', t),
    onReplication: (t) => emit('replication', t),
    readIdentity: (rec) => {
      // A pooled client is asked only idle in its pool (else at its next release, as always); one its owner
      // holds is asked the first moment it is idle (connect.ts identityLater).
      if (!ownerHeld && rec.state !== 'idle') return
      registry.noteIdentityAsked(rec)
      hooks.identityLater?.(rec.client)
    },
    onPass: (report) => {
      metrics.pass(report.durationMs, report.retransmits, report.keepaliveProbes)
      passStats.passes++
      passStats.passMs += report.durationMs
      if (report.crossCheck) {
        passStats.procScans++
        passStats.procScanMs += report.crossCheckMs
      }
    },
  })
  const housekeeping = new Housekeeping(pool, registry, o, (r) => emit('leak', r))
  const lifecycle: Lifecycle = new Lifecycle({
    pool, registry, kernel, options: o, regions, topology, evictor,
    wake: () => scheduler.wake(),
    removed: () => housekeeping.wake(),
    identityLater: (client) => hooks.identityLater?.(client),
    decide: (f) => scheduler.decide(f),
    decideCheckout: (rec, now) => scheduler.decideCheckout(rec, now),
  })
  topology.on('change', (h) => {
    emit('topology', h)
    scheduler.wake()
  })

  const hooks: PoolHooks = {
    ...connectPlanner({
      baseOptions: poolOptions, topology, hosts, targetSessionAttrs, lookup: o.lookup, singleRegion, queryRole, waitForHostMs: o.waitForHostMs,
      isDegraded: (key) => scheduler.isDegraded(key),
      // The check after login is the judge's; a refusal is carried out by the evictor (the login phase).
      decideLogin: (client, login) => scheduler.decide({ kind: 'login', now: Date.now(), id: registry.get(client)?.id ?? null, login }).login!,
      identityAtLogin: o.resolveInDoubt,
      ownerHeld,
      sawIdentity: (client, identity, pooler, at) => {
        const rec = registry.get(client)
        if (rec) registry.noteIdentity(rec, identity, pooler, at)
      },
    }),
    clientCreated: (client, attempt) => lifecycle.created(client, (attempt as Attempt | undefined) ?? null),
    acquiring: lifecycle.acquiring,
    released: lifecycle.released,
    connectFailed: (err) => {
      if (isPoolTimeout(err)) metrics.timeout()
    },
    lifetimeSeconds: (configured) => configured * (1 - o.maxLifetimeJitter * Math.random()),
    ending: onEnding,
    // pg-pool's own words for a caller after end(), with a code.
    endedError: () => new PoolGuardError(ErrorCodes.POOL_ENDED, 'Cannot use a pool after calling end on the pool', { outcome: 'not-sent' }),
  }
  // What a checkout records (the wait time, the acquiring stack), only while something reads it (metrics
  // bound to an SDK, now or later; leak detection): until then pool.connect is pg-pool's own.
  const instrument = (): void => {
    hooks.connectCalled = () => ({ at: performance.now(), stack: o.leakDetectionThresholdMs > 0 ? new Error('acquired here').stack ?? '' : null })
    hooks.clientYielded = (client, tag) => {
      const t = tag as { at: number; stack: string | null }
      metrics.waitTime(performance.now() - t.at)
      const rec = registry.get(client as unknown as Client)
      if (rec) registry.noteAcquiredStack(rec, t.stack)
    }
    if (!ownerHeld) instrumentConnect(pool, hooks)
    if (metrics.active) useTime()
  }
  if (metrics.active || o.leakDetectionThresholdMs > 0) instrument()
  else metrics.onBind(instrument)
  if (attachment.binding) attachment.binding.hooks = hooks
  else patchPool(pool, hooks, unguardedWarning((pool as unknown as { Client: unknown }).Client))
  lifecycle.listen()
  // A pool that another library created may already hold clients.
  for (const client of clientsOf(pool)) if (canSeeInto(client)) lifecycle.adopt(client)
  return { poolName: named.name, releaseName: named.release, releaseClock, registry, topology, scheduler, housekeeping, metrics, lifecycle, inDoubt, hostProbes, passStats }
}
