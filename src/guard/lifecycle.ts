/**
 * Follows each client's life and writes it into the registry as facts: built (connecting), TCP up
 * (socket identity, hardened), role reports, handed out (acquiring), given back (released), gone. pg-pool's
 * hand-out and take-back come from the pool wrappers (no event listeners on the hot path); its other events
 * and the clients' own come in; registry transitions, topology facts and `wake()` calls go out. What must be
 * judged at once — a server's error or notice, a connect deadline, the checkout check — is handed to the
 * scheduler's decide(), which asks the judge and carries the judgement out.
 */
import type { Client, Pool as PgPool } from 'pg'
import { ConnectionEvictedError, WarningCodes, warnOnce } from '../errors'
import type { EventFacts, EventJudgement } from '../judge/judge'
import type { KernelPort } from '../kernel/port'
import type { ResolvedGuardOptions } from '../options'
import { backendPidOf, fdOf, followReportedRole, isIdleInPool, onErrorMessage, onNoticeMessage, onSocketConnected, rawSocketOf, slotOf } from '../pg/internals'
import { keepsTxStatus, trackTxStatus, trackXid } from '../pg/in-flight'
import { mayWrite } from '../judge/outcome-rules'
import { hardenSocket } from '../socket/harden'
import { coarseClock, monoNow } from '../util/time'
import type { Attempt } from '../topology/hosts'
import type { Regions } from '../topology/regions'
import type { Topology } from '../topology/topology'
import type { Evictor } from './evictor'
import type { ConnRecord, Registry } from './registry'

export interface LifecycleDeps {
  pool: PgPool
  registry: Registry
  kernel: KernelPort
  options: ResolvedGuardOptions
  regions: Regions
  topology: Topology
  evictor: Evictor
  /** Facts changed: let the scheduler look. */
  wake(): void
  /** A client left the pool (room for kept-warm clients). */
  removed(): void
  /** A client whose server identity was not read at login is back in the pool: read it now. */
  identityLater?(client: Client): void
  /** Judges a fact that cannot wait for a tick and carries the judgement out (scheduler.decide). */
  decide(f: EventFacts): EventJudgement
  /** The checkout check of an idle client about to be handed out: false when it was evicted instead. */
  decideCheckout(rec: ConnRecord, now: number): boolean
}

export class Lifecycle {
  private readonly checkout: boolean
  /** Idle at least this long (checkoutCheckIdleMs): checked before it is handed out. */
  private readonly checkoutAfterMs: number
  /**
   * The clock of the state's timestamps on the hot path: coarse (util/time.ts, at most COARSE_CLOCK_MS
   * behind while the event loop runs); the monotonic clock itself once something needs milliseconds (the
   * use-time histogram).
   */
  private precise = false
  private readonly registry: Registry

  constructor(private readonly d: LifecycleDeps) {
    this.registry = d.registry
    // The checkout check needs TCP_INFO: off where it cannot be read (the option, or no FFI / not Linux).
    this.checkout = d.options.checkoutCheck && d.kernel.samplingUnavailable() === null
    // The release is stamped on the coarse clock (up to COARSE_CLOCK_MS early), the checkout reads the
    // clock: a measured idle time is never shorter than the real one, so the threshold holds as it is.
    this.checkoutAfterMs = d.options.checkoutCheckIdleMs
  }

  /** Hand-out and take-back read the monotonic clock itself from here on (a metric reads use time in milliseconds). */
  usePreciseClock(): void {
    this.precise = true
  }

  /** pg-pool built a client (not connected yet). */
  created(client: Client, attempt: Attempt | null): ConnRecord {
    const d = this.d
    const rec = d.registry.add(client, client.host, client.port, attempt, Date.now())
    // What became of a query at an eviction reads the last ReadyForQuery's status: older pg does not keep it.
    if (!keepsTxStatus(client.constructor)) trackTxStatus(client)
    if (d.options.resolveInDoubt) trackXid(client, mayWrite)
    const stream = rawSocketOf(client)
    if (stream) d.registry.attachStream(rec, stream, client.host.startsWith('/') ? 'unix' : 'tcp')
    onSocketConnected(client, () => this.socketConnected(rec))
    client.once('end', () => this.ended(rec))
    followReportedRole(client, (role) => {
      const at = Date.now()
      d.registry.noteRole(rec, role, at)
      // Pushed again when a standby is promoted under this session: the topology hears it at once.
      if (rec.state === 'idle' || rec.state === 'in-use') d.topology.noteRole(rec.hostKey, role, at, rec.pooler ? null : (rec.server?.id ?? null))
      d.wake()
    })
    const serverSaid = (severity: string, code: string | undefined, message: string): void =>
      void d.decide({
        kind: 'server-said', now: Date.now(), id: rec.id, hostKey: rec.hostKey, severity, code, message,
        needsWriter: this.needsWriter, connecting: rec.state === 'connecting',
      })
    onErrorMessage(client, serverSaid)
    onNoticeMessage(client, serverSaid)
    // pg emits a checked-out client's connection error on the client, and throws it when nobody listens;
    // the running query has already rejected with it, so a coded warning is enough — and none at all for
    // the guard's own eviction, which the query got as ConnectionEvictedError. One per endpoint.
    client.on('error', (err: Error) => {
      if (client.listenerCount('error') > 1 || err instanceof ConnectionEvictedError || rec.verdict !== null) return
      const at = rec.hostKey
      warnOnce(WarningCodes.CLIENT_ERROR, `client of ${at} failed with no 'error' listener: ${err.message}`, at)
    })
    return rec
  }

  /** A client the pool already held when the guard attached. */
  adopt(client: Client): void {
    const rec = this.created(client, null)
    this.socketConnected(rec)
    this.d.registry.noteBackend(rec, backendPidOf(client))
    this.d.registry.transition(rec, isIdleInPool(this.d.pool, client) ? 'idle' : 'in-use', Date.now())
  }

  /** A connecting record's deadline timer fired: the judge decides whether the attempt is over. */
  connectDeadline(rec: ConnRecord, now: number, deadlineMs: number): void {
    void this.d.decide({ kind: 'connect-deadline', now, id: rec.id, hostKey: rec.hostKey, since: rec.createdAt, deadlineMs })
  }

  /**
   * pg-pool hands the client out (pool wrappers, before pg-pool's own _acquireClient): an idle one is
   * checked first, unless it was idle too briefly to have died unseen; false when it was evicted instead.
   * The hot path: the record is on the client, one clock read serves the check, the coarse clock the
   * transition. An arrow, so the pool calls it directly (no wrapper between).
   */
  readonly acquiring = (client: Client, isNew: boolean): boolean => {
    const registry = this.registry
    // registry.get() written out (the record is the client's slot): one call less on every checkout.
    const rec = slotOf(client) as ConnRecord | undefined
    if (rec === undefined || rec.state === 'ended') return true
    if (!isNew && this.checkout && rec.state === 'idle' && rec.transport === 'tcp') {
      // The one clock read of a checkout: the event loop may have been blocked since the release (the
      // coarse clock stood still meanwhile, and the server's FIN may be in the kernel), so the idle time is
      // real time since the coarse release stamp, which is never later than the release itself.
      const idleMs = rec.lastReleasedAt === null ? Infinity : monoNow() - rec.lastReleasedAt
      if (idleMs >= this.checkoutAfterMs && !this.d.decideCheckout(rec, Date.now())) return false
    }
    registry.transition(rec, 'in-use', this.precise ? monoNow() : coarseClock.now)
    return true
  }

  /** pg-pool takes the client back (before it decides to keep or remove it): idle from here. The hot path too. */
  readonly released = (client: Client): void => {
    const registry = this.registry
    const rec = slotOf(client) as ConnRecord | undefined
    if (rec === undefined || rec.state === 'ended') return
    registry.transition(rec, 'idle', this.precise ? monoNow() : coarseClock.now)
    if (rec.server === null && !rec.identityAsked && rec.transport === 'tcp') {
      registry.noteIdentityAsked(rec)
      this.d.identityLater?.(client)
    }
  }

  /** A client its owner holds (standalone) finished connecting: in use from now, as pg-pool would hand it out. */
  connected(client: Client): void {
    const rec = this.d.registry.get(client)
    if (!rec) return
    this.d.registry.noteBackend(rec, backendPidOf(client))
    this.noteRoleOf(rec)
    this.d.registry.transition(rec, 'in-use', Date.now())
  }

  /** Gone: counted if it had been condemned to leave by itself (retiring), then the record ends. */
  private ended(rec: ConnRecord): void {
    const now = Date.now()
    this.d.evictor.left(rec, now)
    this.d.registry.transition(rec, 'ended', now)
  }

  private noteRoleOf(rec: ConnRecord): void {
    if (rec.reportedRole) this.d.topology.noteRole(rec.hostKey, rec.reportedRole, rec.reportedRoleAt ?? Date.now(), rec.pooler ? null : (rec.server?.id ?? null))
  }

  /** The pool's own events, in pg-pool's order (hand-out and take-back come from the wrappers instead). */
  listen(): void {
    const { pool, registry } = this.d
    pool.on('connect', (client) => {
      const rec = registry.get(client)
      if (!rec) return
      registry.noteBackend(rec, backendPidOf(client))
      this.noteRoleOf(rec)
    })
    pool.on('remove', (client) => {
      const rec = registry.get(client)
      if (rec) this.ended(rec)
      this.d.removed()
    })
    // pg.Pool throws an idle client's error as unhandled when nobody listens; we report it instead.
    pool.on('error', (err, client) => {
      if (pool.listenerCount('error') > 1) return
      const at = client ? `${client.host}:${client.port}` : ''
      warnOnce(WarningCodes.IDLE_CLIENT_ERROR, `idle client of ${at} failed with no 'error' listener on the pool: ${err.message}`, at)
    })
  }

  /** 25006 proves a socket is in the wrong place only for a pool that needs a writer. */
  private get needsWriter(): boolean {
    const attrs = this.d.topology.options.targetSessionAttrs
    return attrs === 'read-write' || attrs === 'primary'
  }

  private socketConnected(rec: ConnRecord): void {
    const socket = rawSocketOf(rec.client)
    if (!socket) return
    const d = this.d
    const unix = socket.remoteFamily === undefined && rec.configuredHost.startsWith('/')
    const fd = fdOf(socket)
    d.registry.attachSocket(rec, {
      socket,
      transport: unix ? 'unix' : 'tcp',
      fd,
      inode: fd === undefined ? null : d.kernel.inodeOf(fd),
      region: d.regions.regionOf(rec.configuredHost, socket.remoteAddress ?? null),
      socketOptions: unix ? null : hardenSocket(socket, fd, d.options, d.kernel),
    })
    d.wake()
  }
}


/** One coded warning per Client class the guard cannot see into (pg-native, a test double). */
export function unguardedWarning(Client: unknown): () => void {
  const name = (Client as { name?: string } | null)?.name || 'an anonymous class'
  return () =>
    warnOnce(
      WarningCodes.CLIENT_UNGUARDED,
      `the pool's Client class (${name}) is not a pg.Client the guard can see into: the pool works as pg.Pool does, ` +
        'but its clients are not hardened, tracked or judged (no kernel verdicts, coded eviction errors or snapshot rows)',
      name
    )
}
