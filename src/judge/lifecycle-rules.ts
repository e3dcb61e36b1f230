/**
 * The lifecycle rules of the judge, pure: what the server or the connection's own life says about one
 * connection. These facts arrive one at a time, as events, and are judged at once (a FATAL error must
 * retire its client before the caller can release it back to the pool).
 */
import { fmt } from '../util/time'
import type { LifecycleVerdictKind } from './verdicts'

export type LifecycleFact =
  /** The backend sent an ErrorResponse of this severity (FATAL, PANIC: it is exiting). */
  | { kind: 'server-error'; severity: string; code: string | undefined; message: string; at: number }
  /** A connection attempt has been connecting since `since`; its deadline is `deadlineMs`. */
  | { kind: 'connect-deadline'; since: number; deadlineMs: number; at: number }

export interface LifecycleVerdict {
  kind: LifecycleVerdictKind
  evidence: string
  firstEvidenceAt: number
}

export function judgeLifecycle(fact: LifecycleFact): LifecycleVerdict | null {
  switch (fact.kind) {
    case 'server-error':
      if (fact.severity !== 'FATAL' && fact.severity !== 'PANIC') return null
      return { kind: 'fatal-error', evidence: `the server sent ${fact.severity}${fact.code ? ` ${fact.code}` : ''}: ${fact.message}`, firstEvidenceAt: fact.at }
    case 'connect-deadline':
      if (fact.at - fact.since < fact.deadlineMs) return null
      return { kind: 'connect-timeout', evidence: `connection attempt still not ready after ${fmt(fact.at - fact.since)} (deadline ${fmt(fact.deadlineMs)})`, firstEvidenceAt: fact.since }
  }
}
