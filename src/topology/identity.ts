/**
 * Which server a session actually reached, whatever address it dialled: read once per new connection (one
 * round trip, after login, before the pool hands the client out) and by each address check (a fresh
 * connection to a configured address, topology/address-check.ts). Behind a VIP, an L4 load balancer or a
 * Kubernetes Service the address never changes at a failover; the server behind it does, and this is how
 * the guard sees it.
 *
 * The server's identity is serverIdentity() (role-query.ts): system identifier, port and postmaster start
 * time — the same under every name that reaches the server, different for any two servers of a cluster.
 * The same query gives the role and timeline (read together, as the host monitor reads them), and
 * pg_backend_pid(): a BackendKeyData pid that is not the backend's own means a pooler (PgBouncer, RDS Proxy,
 * Supavisor, PgCat) answers in front, and the session is not pinned to one server.
 *
 * Only cheap functions: pg_stat_activity and pg_stat_replication are views over every backend's status
 * and cost 1-2 ms in a new backend (measured); the standbys' addresses are read by address checks only.
 */
import type pg from 'pg'
import type { ServerRole } from './hosts'
import { serverIdentity } from './role-query'

/** One server, as a session or a check saw it. */
export interface ServerIdentity {
  /** serverIdentity(): one server under any name. */
  id: string
  /** pg_control_system().system_identifier: shared by a primary and every standby cloned from it. */
  systemId: string | null
  /** pg_postmaster_start_time(), text (microseconds). */
  startedAt: string
  /** inet_server_addr() and inet_server_port(): where the server itself says the session arrived (null over a Unix socket). */
  address: string | null
  port: number | null
  role: ServerRole
  /** Null where the server would not say (a standby whose pg_control_checkpoint() is revoked). */
  timeline: number | null
}

/** What one query after login tells about the session and its server. */
export interface SessionIdentity {
  server: ServerIdentity
  /** pg_backend_pid(): the backend that ran the query. */
  backendPid: number
  /** A pooler answers in front: the BackendKeyData pid is not the backend's, and each transaction may land elsewhere. */
  pooler: boolean
  /** On a primary, when asked for (address checks) and visible (pg_monitor): its physical standbys' addresses. */
  standbys: string[] | null
}

const COMMON = `SELECT pg_backend_pid() AS pid,
  pg_postmaster_start_time()::text AS started, host(inet_server_addr()) AS addr, inet_server_port() AS port,
  pg_is_in_recovery() AS standby, current_setting('default_transaction_read_only') = 'on' AS read_only`

/**
 * The primary's timeline from its WAL file name (exact from the instant of promotion); a standby's from
 * pg_control_checkpoint(). A CASE branch not taken is never evaluated (pg_walfile_name fails on a standby).
 */
const WITH_CONTROL = `${COMMON},
  (SELECT system_identifier::text FROM pg_control_system()) AS system_id,
  CASE WHEN pg_is_in_recovery() THEN (SELECT timeline_id FROM pg_control_checkpoint())
       ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END AS timeline`

/** Where pg_control_*() is revoked (checked at executor start, so the whole query fails): no system id, a standby's timeline unknown. */
const WITHOUT_CONTROL = `${COMMON}, NULL::text AS system_id,
  CASE WHEN pg_is_in_recovery() THEN NULL
       ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END AS timeline`

/**
 * Physical walsenders' client addresses (logical ones are attached to a database and left out). Without
 * pg_monitor the addresses of other roles' walsenders are null: nothing is learnt, nothing breaks.
 */
const STANDBYS = `,
  CASE WHEN pg_is_in_recovery() THEN NULL ELSE (SELECT json_agg(DISTINCT host(a.client_addr)) FROM pg_stat_get_wal_senders() w
    JOIN pg_stat_get_activity(NULL) a ON a.pid = w.pid WHERE a.client_addr IS NOT NULL AND a.datid IS NULL) END AS standbys`


/** Per server (or pool): whether pg_control_*() may be called; false after a 42501. Starts optimistic. */
export class IdentityReader {
  private control = true

  /**
   * Reads the session's identity. `processID` is pg's BackendKeyData pid (client.processID). `standbys`:
   * also list a primary's standbys (address checks). A server that refuses the query for a reason of its
   * own (an SQL error) gives null: the session works, its server is simply unknown. Network errors throw.
   */
  async read(client: pg.Client, processID: number | null, standbys = false): Promise<SessionIdentity | null> {
    for (;;) {
      const text = (this.control ? WITH_CONTROL : WITHOUT_CONTROL) + (standbys ? STANDBYS : '')
      // The owner's type parsers stay out of it: every column comes back as the server's text.
      if (isEnding(client)) return null
      try {
        const { rows } = await client.query({ text, types: RAW_TEXT })
        return parseIdentity(rows[0] as Record<string, string | null> | undefined, processID)
      } catch (err) {
        // The owner ended the client while the query ran (connect() then end() at once): not the guard's to fail.
        if (isEnding(client)) return null
        const code = (err as { code?: unknown }).code
        if (code === '42501' && this.control) {
          this.control = false // insufficient_privilege on pg_control_*: ask without them from now on
          continue
        }
        if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && (err as { severity?: unknown }).severity !== 'FATAL') return null
        throw err
      }
    }
  }
}

const RAW_TEXT = { getTypeParser: () => (value: string) => value }

function isEnding(client: pg.Client): boolean {
  return (client as unknown as { _ending?: boolean })._ending === true
}

/**
 * The row as text (RAW_TEXT), checked: a server or proxy that answers something else (no row, other columns)
 * gives null, never a half-read identity.
 */
export function parseIdentity(r: Record<string, string | null> | undefined, processID: number | null): SessionIdentity | null {
  if (!r || typeof r.pid !== 'string' || typeof r.started !== 'string' || (r.standby !== 't' && r.standby !== 'f')) return null
  const int = (v: string | null | undefined): number | null => (v === null || v === undefined || !/^-?\d+$/.test(v) ? null : Number(v))
  const pid = int(r.pid)
  if (pid === null) return null
  const port = int(r.port)
  const role: ServerRole = { inHotStandby: r.standby === 't', readOnly: r.read_only === 't' }
  let standbys: string[] | null = null
  if (r.standbys !== undefined) {
    try {
      const parsed = r.standbys === null ? [] : (JSON.parse(r.standbys) as unknown)
      standbys = Array.isArray(parsed) ? parsed.filter((x): x is string => typeof x === 'string') : []
    } catch {
      standbys = []
    }
  }
  return {
    server: {
      id: serverIdentity(r.system_id ?? null, { started: r.started, server_port: port })!,
      systemId: r.system_id ?? null,
      startedAt: r.started,
      address: r.addr ?? null,
      port,
      role,
      timeline: int(r.timeline),
    },
    backendPid: pid,
    pooler: processID !== null && processID !== pid,
    standbys,
  }
}
