/**
 * The check after login, pure: may a freshly logged-in session join the pool? Refused when the server it
 * actually reached is fenced (split-brain: a server of its cluster on a higher timeline accepts writes) —
 * by identity, so that behind a VIP a login that still lands on the old primary is refused while one that
 * lands on the new primary is taken — or when its role does not satisfy target_session_attrs.
 *
 * Through a pooler the session's server changes per transaction: only the role is judged there.
 */
import type { LoginDecision, LoginFacts } from '../topology/connect'
import { describeRole, satisfies } from '../topology/hosts'

export type { LoginDecision, LoginFacts }

export function judgeLogin(f: LoginFacts): LoginDecision {
  if (!f.pooler) {
    if (f.server?.fenced) return { ok: false, refuse: 'fenced', why: `it reached ${f.server.where}, which is fenced: ${f.server.fenced}` }
    if (!f.server && f.hostFenced) return { ok: false, refuse: 'fenced', why: f.hostFenced }
  }
  if (!satisfies(f.require, f.role)) {
    const wanted = f.require === 'standby-first-pass' ? 'a standby (prefer-standby, first pass)' : `target_session_attrs=${f.require}`
    return { ok: false, refuse: 'wrong-role', found: describeRole(f.role), wanted }
  }
  return { ok: true }
}
