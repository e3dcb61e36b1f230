/**
 * The monitoring query shared by the host monitor's poll and the promotion watch: role, timeline (on a
 * primary) and the parts of the server's identity that need no grant.
 */

export interface RoleRow {
  standby: boolean
  read_only: boolean
  timeline: number | null
  /** pg_postmaster_start_time(), as text (microseconds). */
  started: string | null
  /** inet_server_port(): null over a Unix socket. */
  server_port: number | null
  /**
   * The snapshot's xmax (epoch-extended, as text): on a standby, every transaction id below it was seen in
   * the WAL it replayed; on a primary, the next id to be assigned. Bounds for resolving an in-doubt commit
   * on a promoted standby (guard/in-doubt.ts).
   */
  xmax: string | null
}

export const ROLE_SQL = `SELECT pg_is_in_recovery() AS standby,
  current_setting('default_transaction_read_only') = 'on' AS read_only,
  CASE WHEN pg_is_in_recovery() THEN NULL
       ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END AS timeline,
  pg_postmaster_start_time()::text AS started, inet_server_port() AS server_port,
  txid_snapshot_xmax(txid_current_snapshot())::text AS xmax`

/**
 * One server's identity, the same under every name that reaches it. The system identifier alone is shared
 * by a primary and every standby cloned from it, so it cannot tell one server under two names from a real
 * split-brain; the postmaster's start time (microseconds) differs between any two servers of one cluster
 * (they are started apart), and the port as the server sees it separates servers on one machine. After a
 * restart the value changes, on every name alike: both monitors reconnect and read the new one.
 */
export function serverIdentity(systemId: string | null, r: Pick<RoleRow, 'started' | 'server_port'>): string | null {
  if (!r.started) return null
  return `${systemId ?? '?'}/${r.server_port ?? '?'}/${r.started}`
}
