/**
 * One monitoring connection per configured host, polled for the server's role and timeline. It is how the
 * pool learns of a promotion on a host it holds no socket to (the split-brain case), and of a host that
 * stopped answering.
 *
 * The timeline is read in a way that needs no grant: on a primary, from its current WAL file name
 * (pg_walfile_name(pg_current_wal_lsn()), exact from the moment of promotion); on a standby, from
 * pg_control_checkpoint() (executable by PUBLIC by default; where revoked, the timeline is left unknown).
 *
 * Each poll also reads the server's identity (see serverIdentity): one server listed under two names (a VIP
 * or proxy and its direct address) must be recognised as one, not as two primaries in a split-brain.
 *
 * And its replication (replication-query.ts): the walreceiver on a standby, the walsenders on a primary. A
 * server that cannot answer that (an old version, a revoked view) is read as `unavailable: <why>`, once per
 * connection and role: the role poll never fails because of it.
 */
import pg from 'pg'
import { withDeadline } from '../util/time'
import { closeOwn, connectOwn, rawSocketOf } from '../pg/internals'
import { ownClient } from '../pg/client-classes'
import type { HostSpec, ServerRole } from './hosts'
import { PromotionWatch } from './promotion-watch'
import {
  PRIMARY_REPLICATION_SQL, primaryReading, type ReplicationReading, STANDBY_REPLICATION_SQL, standbyReading,
} from './replication-query'
import { ROLE_SQL, type RoleRow, serverIdentity } from './role-query'

export interface HostObservation {
  reachable: boolean
  role?: ServerRole
  /** Null when the server would not say (a standby whose pg_control_checkpoint() is revoked). */
  timeline?: number | null
  /** pg_control_system().system_identifier: equal on a primary and the standbys cloned from it. */
  systemId?: string | null
  /**
   * Which server answered, whatever name reached it: system identifier, port and postmaster start time
   * (serverIdentity). Two names with the same value are one server; null when unknown.
   */
  serverId?: string | null
  /** What the server shows of its replication; undefined when not read this time (a promotion watch report). */
  replication?: ReplicationReading
  /** The address the monitoring connection reached (follows DNS). */
  ip?: string
  /** This poll opened a new connection: what it read is where the address leads now. */
  fresh?: boolean
  /** A failed poll that had its session: the login was answered, a query was not (behind a pooler: the server behind it). */
  loggedIn?: boolean
  /** The snapshot's xmax when read (RoleRow.xmax); on a promotion report, the replay horizon just before it. */
  xmax?: string | null
  replayedXmax?: string | null
  /** The promotion watch's report, read in the round trip that saw the promotion. */
  promotion?: boolean
  error?: string
  at: number
}

const STANDBY_TIMELINE_SQL = 'SELECT timeline_id AS timeline FROM pg_control_checkpoint()'
const SYSTEM_ID_SQL = 'SELECT system_identifier::text AS id FROM pg_control_system()'

export class HostMonitor {
  private client: pg.Client | undefined
  private standbyTimelineAllowed = true
  private systemId: string | null | undefined
  /** Per role, why this server cannot show its replication (an SQL error), once found: not asked again. */
  private replicationUnavailable: { standby?: string; primary?: string } = {}
  private promotionWatch: PromotionWatch | undefined
  /** The watch's last promotion report: a poll sent before it may still return the standby it read. */
  private promoted: HostObservation | undefined

  constructor(
    readonly spec: HostSpec,
    /** A fresh client config for this host (see clientConfigFor). */
    private readonly config: () => Record<string, unknown>,
    private readonly timeoutMs: number
  ) {}

  async poll(): Promise<HostObservation> {
    let loggedIn = false
    try {
      const fresh = this.client === undefined
      const client = await this.connected()
      loggedIn = true
      const sentAt = Date.now()
      const { rows } = await this.withDeadline(() => client.query(ROLE_SQL))
      const r = rows[0] as RoleRow
      let timeline = r.timeline
      if (r.standby && this.standbyTimelineAllowed) {
        try {
          timeline = (await this.withDeadline(() => client.query(STANDBY_TIMELINE_SQL))).rows[0].timeline as number
        } catch (err) {
          if ((err as { code?: string }).code !== '42501') throw err
          this.standbyTimelineAllowed = false // insufficient_privilege: leave it unknown from now on
        }
      }
      if (this.systemId === undefined) {
        try {
          this.systemId = (await this.withDeadline(() => client.query(SYSTEM_ID_SQL))).rows[0].id as string
        } catch (err) {
          if ((err as { code?: string }).code !== '42501') throw err
          this.systemId = null
        }
      }
      const replication = await this.readReplication(client, r.standby)
      // Read before the promotion the watch already reported: nothing newer than the watch's own report.
      if (r.standby && this.promoted && this.promoted.at >= sentAt) return { ...this.promoted }
      return { ...this.observation(r, timeline, rawSocketOf(client)?.remoteAddress), replication, fresh }
    } catch (err) {
      this.drop()
      return { reachable: false, error: (err as Error).message, loggedIn, at: Date.now() }
    }
  }

  /** One query; an error of SQL class 42 (no such view, no permission) is remembered as the reason, anything else is thrown. */
  private async readReplication(client: pg.Client, standby: boolean): Promise<ReplicationReading> {
    const side = standby ? 'standby' : 'primary'
    const known = this.replicationUnavailable[side]
    if (known) return { side: 'unavailable', why: known }
    try {
      const { rows } = await this.withDeadline(() => client.query(standby ? STANDBY_REPLICATION_SQL : PRIMARY_REPLICATION_SQL))
      return standby ? standbyReading(rows[0]) : primaryReading(rows[0])
    } catch (err) {
      const e = err as { code?: unknown; message?: unknown }
      // Class 42 (no such view or column, no permission): this server cannot tell. Anything else is the link's.
      if (!(err instanceof pg.DatabaseError) || typeof e.code !== 'string' || !e.code.startsWith('42')) throw err
      const why = `unavailable: ${String(e.message)} (${e.code})`
      this.replicationUnavailable[side] = why
      return { side: 'unavailable', why }
    }
  }

  /**
   * While the host is a standby: keep a watch session that reports its promotion at once (see
   * promotion-watch.ts), as an observation like a poll's. Idempotent; `unwatch` ends it.
   */
  watch(onPromoted: (obs: HostObservation) => void): void {
    if (this.promotionWatch) return
    const w = new PromotionWatch(
      this.config,
      this.timeoutMs,
      (row, ip, replayed) => {
        this.promoted = { ...this.observation(row, row.timeline, ip), replayedXmax: replayed, promotion: true }
        onPromoted({ ...this.promoted })
      },
      () => {
        if (this.promotionWatch === w) this.promotionWatch = undefined
      }
    )
    this.promotionWatch = w
    w.start()
  }

  unwatch(): void {
    this.promotionWatch?.stop()
    this.promotionWatch = undefined
  }

  /** Forget the connection (e.g. after DNS moved the name): the next poll reconnects. */
  drop(): void {
    this.unwatch()
    this.systemId = undefined // another server may answer next time (DNS)
    this.replicationUnavailable = {}
    if (this.client) closeOwn(this.client, new Error('monitor connection dropped'))
    this.client = undefined
  }

  close(): void {
    this.unwatch()
    const c = this.client
    this.client = undefined
    c?.end().catch(() => {})
  }

  private observation(r: RoleRow, timeline: number | null, ip: string | undefined): HostObservation {
    return {
      reachable: true,
      role: { inHotStandby: r.standby, readOnly: r.read_only },
      timeline,
      systemId: this.systemId,
      serverId: serverIdentity(this.systemId ?? null, r),
      ip,
      xmax: r.xmax ?? null,
      at: Date.now(),
    }
  }

  private async connected(): Promise<pg.Client> {
    if (this.client) return this.client
    const client = ownClient(pg, this.config())
    client.on('error', () => {})
    this.client = client
    await this.withDeadline(() => connectOwn(client))
    return client
  }

  private withDeadline<T>(start: () => Promise<T>): Promise<T> {
    return withDeadline(start, this.timeoutMs)
  }
}
