/**
 * What a host's monitor reads about replication, one query per poll beside the role query: on a standby
 * its WAL receiver (pg_stat_wal_receiver), on a primary its physical WAL senders (pg_stat_replication).
 * Ages are computed by the server (clock_timestamp() minus the server's own timestamps), so the client's
 * clock never enters. The settings that bound a healthy link's silence come along (pg_settings needs no grant).
 *
 * Without pg_monitor (pg_read_all_stats) PostgreSQL shows other roles' walreceiver and walsenders with
 * only their pid: the reading then says whether they exist (`visible: false`), not how they are.
 * This module reads; judge/replication-rules.ts decides what a reading means (HostReplication, below, is
 * the shape of its answer, kept in topology's host states).
 */

export interface StandbyReading {
  side: 'standby'
  /** A walreceiver process is running and connected (pg_stat_wal_receiver has a row). */
  receiver: boolean
  /** Its details could be read (pg_read_all_stats); false: only that it exists. */
  visible: boolean
  /** pg_stat_wal_receiver.status: streaming, waiting, stopping, ... */
  status: string | null
  /** Since the last message from the upstream (last_msg_receipt_time), ms, by the server's clock. */
  silenceMs: number | null
  /** Since the latest WAL end the upstream reported was sent (latest_end_time), ms. */
  endAgeMs: number | null
  /** "host:port" of the upstream (sender_host, sender_port). */
  upstream: string | null
  /** wal_receiver_timeout, ms (0 = off): the walreceiver asks the upstream for a reply after half of it. */
  receiverTimeoutMs: number
}

export interface SenderReading {
  /** The standby's address as the primary sees it (client_addr; null over a Unix socket or when not visible). */
  address: string | null
  /** pg_stat_replication.state (null when not visible). */
  state: string | null
  /** Since the standby's last reply (reply_time), ms. */
  replyAgeMs: number | null
  /** replay_lag, s (null once the standby has caught up and idles). */
  replayLagS: number | null
}

export interface PrimaryReading {
  side: 'primary'
  /** Physical walsenders (logical ones, attached to a database, are left out). */
  senders: SenderReading[]
  /** wal_receiver_status_interval, ms (0 = off): a standby replies at least this often. */
  statusIntervalMs: number
}

export interface UnavailableReading {
  side: 'unavailable'
  /** E.g. "relation pg_stat_wal_receiver does not exist" (an old server). */
  why: string
}

export type ReplicationReading = StandbyReading | PrimaryReading | UnavailableReading

export const STANDBY_REPLICATION_SQL = `SELECT r.pid IS NOT NULL AS receiver, r.status IS NOT NULL AS visible, r.status,
  (EXTRACT(EPOCH FROM clock_timestamp() - r.last_msg_receipt_time) * 1000)::float8 AS silence_ms,
  (EXTRACT(EPOCH FROM clock_timestamp() - r.latest_end_time) * 1000)::float8 AS end_age_ms,
  r.sender_host || ':' || r.sender_port AS upstream,
  (SELECT setting::int FROM pg_settings WHERE name = 'wal_receiver_timeout') AS receiver_timeout_ms
FROM (SELECT 1) AS one LEFT JOIN pg_stat_wal_receiver r ON true`

export const PRIMARY_REPLICATION_SQL = `SELECT
  (SELECT setting::int FROM pg_settings WHERE name = 'wal_receiver_status_interval') * 1000 AS status_interval_ms,
  COALESCE((SELECT json_agg(json_build_object(
      'address', host(s.client_addr),
      'state', s.state,
      'replyAgeMs', (EXTRACT(EPOCH FROM clock_timestamp() - s.reply_time) * 1000)::float8,
      'replayLagS', EXTRACT(EPOCH FROM s.replay_lag)::float8))
    FROM pg_stat_replication s
    WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = s.pid AND a.datid IS NOT NULL)), '[]') AS senders`

interface StandbyRow {
  receiver: boolean
  visible: boolean
  status: string | null
  silence_ms: number | null
  end_age_ms: number | null
  upstream: string | null
  receiver_timeout_ms: number | null
}

interface PrimaryRow {
  status_interval_ms: number | null
  senders: SenderReading[]
}

export function standbyReading(r: StandbyRow): StandbyReading {
  return {
    side: 'standby', receiver: r.receiver, visible: r.visible, status: r.status, silenceMs: r.silence_ms, endAgeMs: r.end_age_ms,
    upstream: r.upstream, receiverTimeoutMs: r.receiver_timeout_ms ?? 0,
  }
}

export function primaryReading(r: PrimaryRow): PrimaryReading {
  return { side: 'primary', senders: r.senders, statusIntervalMs: r.status_interval_ms ?? 0 }
}

export type ReplicationState = 'streaming' | 'lost' | 'unknown'

/** What `topology().hosts[i].replication` holds. */
export interface HostReplication {
  state: ReplicationState
  /** When the current state began (null: never judged). */
  since: number | null
  /** What the last reading showed, e.g. "walreceiver streaming from 10.0.0.1:5432, last message 0.4 s ago". */
  detail: string | null
  /** On a primary: the largest replay lag of its streaming standbys, s (null: none measured). */
  lagSeconds: number | null
  /** On a standby: its upstream, "host:port". */
  upstream: string | null
  /** On a primary: standbys streaming with a recent reply. */
  standbys: number | null
  /** Whether the server showed the details (false: not monitored, not visible, unavailable). */
  readable: boolean
  /** Why not readable, or what could not be seen; null when everything was. */
  why: string | null
  /** While not lost: the readings are bad since then, not yet for lostMs. */
  pendingSince: number | null
}

export function unknownReplication(why: string): HostReplication {
  return { state: 'unknown', since: null, detail: null, lagSeconds: null, upstream: null, standbys: null, readable: false, why, pendingSince: null }
}

