/**
 * Follows each client's life and writes it into the registry as facts: built (connecting), TCP up
 * (socket identity, hardened), role reports, handed out, given back, gone. Pool events and client events
 * come in; registry transitions, topology facts and `wake()` calls go out. The only verdicts here are the
 * lifecycle rules (a FATAL error, a connect deadline), judged on the spot and handed to the one evictor.
 */
import type { Client, Pool as PgPool } from 'pg'
import { ConnectionEvictedError, WarningCodes, warnOnce } from '../errors'
import { judgeLifecycle, type LifecycleFact } from '../judge/lifecycle-rules'
import type { KernelPort } from '../kernel/port'
import type { ResolvedGuardOptions } from '../options'
import {
  backendPidOf, evictedByGuard, fdOf, followReportedRole, isIdleInPool, onErrorMessage, onNoticeMessage, onSocketConnected, rawSocketOf,
} from '../pg/adapter'
import { keepsTxStatus, trackTxStatus, trackXid } from '../pg/in-flight'
import { mayWrite } from '../judge/outcome-rules'
import { hardenSocket } from '../socket/harden'
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
}

export class Lifecycle {
  constructor(private readonly d: LifecycleDeps) {}

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
    client.once('end', () => d.registry.transition(rec, 'ended', Date.now()))
    followReportedRole(client, (role) => {
      const at = Date.now()
      d.registry.noteRole(rec, role, at)
      // Pushed again when a standby is promoted under this session: the topology hears it at once.
      if (rec.state === 'idle' || rec.state === 'in-use') d.topology.noteRole(`${rec.configuredHost}:${rec.configuredPort}`, role, at, rec.pooler ? null : (rec.server?.id ?? null))
      d.wake()
    })
    const serverSaid = (severity: string, code: string | undefined, message: string): void =>
      this.fact(rec, { kind: 'server-error', severity, code, message, needsWriter: this.needsWriter, at: Date.now() })
    onErrorMessage(client, serverSaid)
    onNoticeMessage(client, serverSaid)
    // pg emits a checked-out client's connection error on the client, and throws it when nobody listens;
    // the running query has already rejected with it, so a coded warning is enough — and none at all for
    // the guard's own eviction, which the query got as ConnectionEvictedError. One per endpoint.
    client.on('error', (err: Error) => {
      if (client.listenerCount('error') > 1 || err instanceof ConnectionEvictedError || evictedByGuard(client)) return
      const at = `${rec.configuredHost}:${rec.configuredPort}`
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

  /** A connecting record's deadline passed. */
  connectDeadline(rec: ConnRecord, now: number): void {
    this.fact(rec, { kind: 'connect-deadline', since: rec.createdAt, deadlineMs: now - rec.createdAt, at: now })
  }

  /** The pool's own events, in pg-pool's order. */
  listen(): void {
    const { pool, registry } = this.d
    pool.on('connect', (client) => {
      const rec = registry.get(client)
      if (rec) registry.noteBackend(rec, backendPidOf(client))
      if (rec?.serverRole) this.d.topology.noteRole(`${rec.configuredHost}:${rec.configuredPort}`, rec.serverRole, rec.serverRoleAt ?? Date.now(), rec.pooler ? null : (rec.server?.id ?? null))
    })
    pool.on('acquire', (client) => {
      const rec = registry.get(client)
      if (rec) registry.transition(rec, 'in-use', Date.now())
    })
    pool.on('release', (_err, client) => {
      const rec = registry.get(client)
      if (!rec) return
      registry.transition(rec, 'idle', Date.now())
      if (rec.server === null && !rec.identityAsked && rec.transport === 'tcp') {
        registry.noteIdentityAsked(rec)
        this.d.identityLater?.(client)
      }
    })
    pool.on('remove', (client) => {
      const rec = registry.get(client)
      if (rec) {
        this.d.evictor.left(rec, Date.now())
        registry.transition(rec, 'ended', Date.now())
      }
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

  private fact(rec: ConnRecord, fact: LifecycleFact): void {
    const v = judgeLifecycle(fact)
    if (!v) return
    // A server error while connecting: pg fails the connect with the server's own error.
    if (fact.kind !== 'server-error' || rec.state !== 'connecting') this.d.evictor.evict(rec, v, fact.at)
    // Read the host's role and DNS answer now, not at the next poll (what they say reaches the scheduler as facts).
    if (v.recheckHost) this.d.topology.recheck(`${rec.configuredHost}:${rec.configuredPort}`)
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
