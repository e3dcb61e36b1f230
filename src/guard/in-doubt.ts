/**
 * Resolving in-doubt writes (the guard option resolveInDoubt). When the guard destroys a connection under a
 * COMMIT (or an autocommit statement), nobody heard whether it was applied: its error's outcome is
 * 'unknown'. This asks the server that holds the answer, once it can be asked:
 *
 * - the same server (by identity) after a heal: the evicted session's backend (its pid, and the client port
 *   the server saw, so a reused pid is never taken for it) is looked up in pg_stat_activity.
 *   Still idle in its transaction block: the COMMIT never arrived (the guard closed the socket with an RST,
 *   so it never will) — the backend is terminated and the block is rolled back; that is the trap of a
 *   COMMIT lost on the way, which would otherwise hold its locks until the server noticed the dead
 *   connection (hours, with default keepalives). Still running it: asked again later. Done or gone: the
 *   transaction's id, when the guard learnt it (in-flight.ts, trackXid), is looked up with txid_status().
 * - a promoted standby of the same cluster after a failover: only by the transaction's id, and only where
 *   the answer is about that transaction: an id below the standby's replay horizon before its promotion
 *   (ServerState.replayedBelow) was in the WAL it replayed, so 'committed' or 'aborted' there is the answer;
 *   an id from its first own id on (newFrom), or 'in the future', never reached it: rolled back. In between,
 *   'committed' is taken only where the promotion watch read that first id in the round trip that saw the
 *   promotion (a transaction written on the new primary within that round trip could share the number);
 *   else it is unknown.
 *
 * Never 'committed' or 'rolled-back' unless a server said so; 'unknown' where nothing can (an autocommit
 * statement that arrived: its id was never learnt). The same routine ends orphaned transaction blocks of
 * sessions evicted with outcome 'rolled-back'.
 */
import pg from 'pg'
import type { ResolvedOutcome } from '../errors'
import { clientConfigFor } from '../topology/connect'
import { backendPidOf, closeOwn, connectOwn } from '../pg/internals'
import { ownClient } from '../pg/client-classes'
import type { ServerIdentity, SessionIdentity } from '../topology/identity'
import type { Topology } from '../topology/topology'
import { withDeadline } from '../util/time'

/** What the guard knew of an in-doubt write at the eviction. */
export interface InDoubtWrite {
  host: string
  port: number
  server: ServerIdentity
  /** The BackendKeyData pid (the backend's own: no pooler in front) and the client port the server saw. */
  backendPid: number | null
  localPort: number | null
  /** The transaction's id (txid_current_if_assigned(), epoch-extended), when learnt. */
  xid: string | null
  /** true: a COMMIT of a transaction block; false: an autocommit statement (or unknown text). */
  commit: boolean
}

export interface InDoubtDeps {
  poolOptions: object
  topology: Topology
  /** Deadline of one connection attempt to a server. */
  timeoutMs: number
  onResolved(outcome: ResolvedOutcome): void
}

/** How long the guard keeps trying in the background, and how often (more often at first: a heal is usually quick). */
const BACKGROUND_MS = 5 * 60_000
const everyMs = (elapsed: number): number => (elapsed < 10_000 ? 250 : elapsed < 60_000 ? 1000 : 5000)

export class InDoubtResolver {
  private stopped = false
  private readonly timers = new Set<NodeJS.Timeout>()

  constructor(private readonly d: InDoubtDeps) {}

  /**
   * Starts resolving `w` in the background now and returns what the error's resolveOutcome() calls: the
   * answer, or 'unknown' at the caller's deadline (default 30 s; the background work goes on).
   */
  track(w: InDoubtWrite): (options?: { timeoutMs?: number }) => Promise<ResolvedOutcome> {
    const answer = this.run(w, true)
    return (options = {}) => {
      const ms = options.timeoutMs ?? 30_000
      return new Promise<ResolvedOutcome>((resolve) => {
        const t = setTimeout(() => resolve('unknown'), ms)
        t.unref()
        void answer.then((a) => {
          clearTimeout(t)
          resolve(a)
        })
      })
    }
  }

  /** A session evicted inside a transaction block (outcome 'rolled-back'): end its orphaned block once the server answers. */
  orphan(w: InDoubtWrite): void {
    void this.run(w, false)
  }

  stop(): void {
    this.stopped = true
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
  }

  private async run(w: InDoubtWrite, report: boolean): Promise<ResolvedOutcome> {
    const started = Date.now()
    let outcome: ResolvedOutcome = 'unknown'
    while (!this.stopped && Date.now() - started < BACKGROUND_MS) {
      const a = await this.attempt(w).catch(() => null)
      if (a !== null) {
        outcome = a
        break
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          this.timers.delete(t)
          resolve()
        }, everyMs(Date.now() - started))
        t.unref()
        this.timers.add(t)
      })
    }
    if (report) this.d.onResolved(outcome)
    return outcome
  }

  /** One look at every host that could hold the answer; null: no answer yet. */
  private async attempt(w: InDoubtWrite): Promise<ResolvedOutcome | null> {
    const t = this.d.topology
    const hosts = [{ host: w.host, port: w.port }, ...[...t.hosts.values()].map((h) => h.spec).filter((s) => s.host !== w.host || s.port !== w.port)]
    // A write on a server fenced since (a split-brain's loser) is asked of the winner only: what the loser
    // committed is not on the timeline that goes on.
    const fenced = t.servers.get(w.server.id)?.fenced != null
    // All at once, the first answer wins: the write's own host may be the one still cut off.
    const asks = hosts.filter((h) => !h.host.startsWith('/')).map((h) => this.ask(h.host, h.port, w, fenced))
    return new Promise((resolve) => {
      let left = asks.length
      if (left === 0) resolve(null)
      for (const a of asks) {
        void a.then((answer) => {
          if (answer !== null) resolve(answer)
          else if (--left === 0) resolve(null)
        })
      }
    })
  }

  private async ask(host: string, port: number, w: InDoubtWrite, fenced: boolean): Promise<ResolvedOutcome | null> {
    const config = clientConfigFor(this.d.poolOptions, host, port, { connectionTimeoutMillis: 0, keepAlive: false, application_name: 'pg-pool-guard resolver' })
    const client = ownClient(pg, config)
    client.on('error', () => {})
    try {
      const id = await withDeadline(async () => {
        await connectOwn(client)
        return this.d.topology.identity.read(client, backendPidOf(client))
      }, this.d.timeoutMs)
      if (!id) return null
      if (id.server.id === w.server.id) return fenced ? null : await this.onSameServer(client, w, id)
      if (this.promotedFrom(id, w)) return await this.onPromoted(client, w, id)
      return null
    } catch {
      return null
    } finally {
      closeOwn(client, new Error('resolver done'))
    }
  }

  /** A standby of the write's cluster promoted since: a later timeline, primary now. */
  private promotedFrom(id: SessionIdentity, w: InDoubtWrite): boolean {
    const s = id.server
    return !id.pooler && w.server.systemId !== null && s.systemId === w.server.systemId && !s.role.inHotStandby && (s.timeline ?? 0) > (w.server.timeline ?? 0)
  }

  private async onSameServer(client: pg.Client, w: InDoubtWrite, id: SessionIdentity): Promise<ResolvedOutcome | null> {
    if (w.backendPid !== null && !id.pooler) {
      const { rows } = await client.query<{ state: string | null; xid: string | null; port: number | null }>(
        'SELECT state, backend_xid::text AS xid, client_port AS port FROM pg_stat_activity WHERE pid = $1', [w.backendPid]
      )
      const b = rows[0]
      if (b && (w.localPort === null || b.port === null || b.port === w.localPort)) {
        if (b.state === 'active') return null // still running the statement (a COMMIT waiting on its standby): later
        if (b.state?.startsWith('idle in transaction')) {
          // The COMMIT never arrived, and no late copy of it can (RST): end the block. Its id, if known,
          // is then looked up all the same, so the answer is the server's.
          const xid = w.xid ?? b.xid
          const ended = await client.query<{ ok: boolean }>(
            "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE pid = $1 AND state LIKE 'idle in transaction%'", [w.backendPid]
          )
          if (ended.rows[0]?.ok !== true) return null
          await this.gone(client, w.backendPid)
          if (xid === null) return w.commit ? 'rolled-back' : 'unknown'
          return this.status(client, xid)
        }
      }
    }
    if (w.xid === null) return 'unknown' // it arrived (or the backend is gone): only its id could tell
    return this.status(client, w.xid)
  }

  private async onPromoted(client: pg.Client, w: InDoubtWrite, id: SessionIdentity): Promise<ResolvedOutcome | null> {
    if (w.xid === null) return 'unknown'
    const bounds = this.d.topology.servers.get(id.server.id)
    const x = BigInt(w.xid)
    if (bounds?.newFrom && x >= BigInt(bounds.newFrom)) return 'rolled-back' // one of the new primary's own ids: ours never reached it
    const status = await this.status(client, w.xid)
    if (status !== 'committed') return status
    // Committed, and the id is the old primary's: below what the standby had replayed, or below the first id
    // of its own as its promotion watch read it in the round trip that saw the promotion (only a transaction
    // written on it within that round trip could share the number).
    if (bounds?.replayedBelow && x < BigInt(bounds.replayedBelow)) return 'committed'
    if (bounds?.newFrom && bounds.newFromAtPromotion && x < BigInt(bounds.newFrom)) return 'committed'
    return 'unknown'
  }

  /** txid_status(): committed, aborted ('rolled-back'), in progress (null: ask again), or too old to say. */
  private async status(client: pg.Client, xid: string): Promise<ResolvedOutcome | null> {
    try {
      const { rows } = await client.query<{ s: string | null }>('SELECT txid_status($1::bigint) AS s', [xid])
      const s = rows[0]?.s
      if (s === 'committed') return 'committed'
      if (s === 'aborted') return 'rolled-back'
      if (s === 'in progress') return null
      return 'unknown'
    } catch (err) {
      // "transaction ID ... is in the future": this server never saw it.
      if ((err as { code?: string }).code === '22023' && /in the future/.test((err as Error).message)) return 'rolled-back'
      throw err
    }
  }

  /** Waits (briefly) until a terminated backend has left. */
  private async gone(client: pg.Client, pid: number): Promise<void> {
    for (const deadline = Date.now() + 2000; Date.now() < deadline; ) {
      const { rows } = await client.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])
      if (rows.length === 0) return
      await new Promise((r) => setTimeout(r, 20))
    }
  }
}

/** The facts of an in-doubt write from what the guard recorded of the session (null where it cannot be resolved). */
export function inDoubtWrite(rec: { configuredHost: string; configuredPort: number; server: ServerIdentity | null; pooler: boolean | null; backendPid: number | null; localPort: number | null }, xid: string | null, commit: boolean): InDoubtWrite | null {
  if (!rec.server) return null
  return {
    host: rec.configuredHost, port: rec.configuredPort, server: rec.server,
    backendPid: rec.pooler ? null : rec.backendPid, localPort: rec.localPort, xid, commit,
  }
}
