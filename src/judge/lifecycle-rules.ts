/**
 * The lifecycle rules of the judge, pure: what the server or the connection's own life says about one
 * connection. These facts arrive one at a time, as events, and are judged at once (a FATAL error must
 * retire its client before the caller can release it back to the pool).
 *
 * Server messages that prove a socket is in the wrong place (judged only when an ErrorResponse or a
 * NoticeResponse arrives, never per query):
 * - 25006 read_only_sql_transaction, on a pool that needs a writer (read-write, primary): the server was
 *   made read-only or demoted under the pool: `wrong-role`. On any other pool it is the caller's business.
 * - 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now, and class 08 (connection
 *   exception), on every pool: `server-going-away`. An immediate shutdown or a crash sends 57P01/57P02 as a
 *   WARNING notice just before the socket closes, a fast shutdown as FATAL: both count.
 * - any other FATAL or PANIC: `fatal-error`.
 * The first two also ask for the host's role and DNS answer to be read again now, not at the next poll.
 */
import { fmt } from '../util/time'
import type { LifecycleVerdictKind, Verdict } from './verdicts'

export type LifecycleFact =
  /**
   * The backend sent an ErrorResponse (or a NoticeResponse) with this severity and SQLSTATE; `needsWriter`:
   * the pool's targetSessionAttrs is read-write or primary.
   */
  | { kind: 'server-error'; severity: string; code: string | undefined; message: string; needsWriter: boolean; at: number }
  /** A connection attempt has been connecting since `since`; its deadline is `deadlineMs`. */
  | { kind: 'connect-deadline'; since: number; deadlineMs: number; at: number }

/** A verdict about the one connection the fact is about (the caller knows which: no id). */
export type LifecycleVerdict = Omit<Verdict<LifecycleVerdictKind | 'wrong-role'>, 'id'>

/** SQLSTATEs that say the server is going away or the connection is broken (besides class 08). */
const GOING_AWAY: Readonly<Record<string, string>> = {
  '57P01': 'admin_shutdown',
  '57P02': 'crash_shutdown',
  '57P03': 'cannot_connect_now',
}

export function judgeLifecycle(fact: LifecycleFact): LifecycleVerdict | null {
  switch (fact.kind) {
    case 'server-error': {
      const { code, severity, at } = fact
      const said = `the server sent ${severity}${code ? ` ${code}` : ''}`
      if (code === '25006') {
        if (!fact.needsWriter) return null
        return { kind: 'wrong-role', evidence: `${said} (read_only_sql_transaction) to a pool that needs a writer: ${fact.message}`, firstEvidenceAt: at, serverError: true }
      }
      const name = code === undefined ? undefined : GOING_AWAY[code] ?? (code.startsWith('08') ? 'connection_exception' : undefined)
      if (name) return { kind: 'server-going-away', evidence: `${said} (${name}): ${fact.message}`, firstEvidenceAt: at, serverError: true }
      if (severity !== 'FATAL' && severity !== 'PANIC') return null
      return { kind: 'fatal-error', evidence: `${said}: ${fact.message}`, firstEvidenceAt: at, serverError: true }
    }
    case 'connect-deadline':
      if (fact.at - fact.since < fact.deadlineMs) return null
      return {
        kind: 'connect-timeout', evidence: `connection attempt still not ready after ${fmt(fact.at - fact.since)} (deadline ${fmt(fact.deadlineMs)})`,
        firstEvidenceAt: fact.since, serverError: false,
      }
  }
}
