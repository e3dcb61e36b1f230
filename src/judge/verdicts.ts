/**
 * The verdict table: every reason the guard retires or destroys a connection, where the verdict comes
 * from, and all it does — to the connection in each phase, to its host, to a holder who already has the
 * server's error. This is the whole eviction policy: the judge (judge.ts) reads the host columns, the one
 * evictor (guard/evictor.ts) the connection columns, and nothing else decides.
 *
 * Adding a verdict = one row here, one rule (kernel-rules.ts, topology-rules.ts, lifecycle-rules.ts or
 * checkout-rules.ts) and one line in the table test (test/unit/verdicts.test.ts), which checks what the
 * judge and the evictor do, row by row.
 */

import type { VerdictKind } from '../verdict-kinds'

export type { KernelVerdictKind, LifecycleVerdictKind, ProbeVerdictKind, TopologyVerdictKind, VerdictKind } from '../verdict-kinds'

/**
 * What happens to the connection:
 * - remove: an idle client leaves the pool as pg-pool's idle timeout would ('remove' emitted), its socket destroyed.
 * - destroy: an in-use client's socket is destroyed; the running query rejects with ConnectionEvictedError.
 * - retire: an in-use client finishes what it does and leaves the pool when it is released.
 * - topology-policy: `destroy` or `retire`, as the topologyEvictInUse option says.
 * - fail: a connection still connecting is abandoned; its connect() fails with ConnectionEvictedError.
 * - refuse: a session the check after login refused (a fenced server, the wrong role) is ended quietly; its
 *   connect() fails with that check's own error (PGG_HOST_FENCED, PGG_WRONG_ROLE).
 * - none: nothing to do: pg-pool removes an idle client that errors by itself, and pg fails a connect that
 *   gets an ErrorResponse with the server's own error.
 */
export type Action = 'remove' | 'destroy' | 'retire' | 'fail' | 'refuse' | 'none'

export interface VerdictRule {
  /** Who reaches it: kernel samples, a host probe, the topology (roles, DNS, regions), the server or the connection's lifecycle. */
  source: 'kernel' | 'probe' | 'topology' | 'server' | 'lifecycle'
  /**
   * The kernel's or the server's word is final: applied even to a socket that received data recently (the
   * classifier's safety rule spares every other kernel verdict there).
   */
  definitive: boolean
  idle: 'remove' | 'none'
  inUse: 'destroy' | 'retire' | 'topology-policy'
  connecting: 'fail' | 'none'
  /**
   * The whole host is judged gone: new connections wait for it or avoid it, and it is probed until it
   * answers. 'with-consensus': when the kernel rules' host consensus found the host dead (the stalled
   * sockets of a dead host get zombie verdicts, the others host-dead); 'always': the verdict is about the host.
   */
  marksHostDown: 'always' | 'with-consensus' | 'never'
  /** Read the host's role and DNS answer again now, not at the next poll. */
  recheckHost: boolean
  /**
   * When the verdict rests on the server's own error to the client's holder (a 25006, a FATAL): what an
   * in-use client gets instead of `inUse` — retired, never destroyed under a caller who already has the
   * server's error.
   */
  onServerError: 'retire' | null
  /** One line for the README and for evidence-less readers. */
  means: string
}

type Row = VerdictRule
const kernel = (o: Partial<Row> & Pick<Row, 'means'>): Row => ({
  source: 'kernel', definitive: false, idle: 'remove', inUse: 'destroy', connecting: 'fail', marksHostDown: 'never', recheckHost: false, onServerError: null, ...o,
})
const topology = (o: Partial<Row> & Pick<Row, 'means'>): Row => ({
  source: 'topology', definitive: true, idle: 'remove', inUse: 'topology-policy', connecting: 'fail', marksHostDown: 'never', recheckHost: false, onServerError: null, ...o,
})
const server = (o: Partial<Row> & Pick<Row, 'means'>): Row => ({
  source: 'server', definitive: true, idle: 'none', inUse: 'retire', connecting: 'none', marksHostDown: 'never', recheckHost: false, onServerError: 'retire', ...o,
})

export const VERDICTS: { readonly [K in VerdictKind]: VerdictRule } = {
  'zombie-unacked': kernel({ marksHostDown: 'with-consensus', recheckHost: true, means: 'data unacknowledged, retransmitting, no ACK for stallMs, and the host heard from by no other socket' }),
  'zombie-keepalive': kernel({ marksHostDown: 'with-consensus', recheckHost: true, means: 'two or more keepalive probes unanswered' }),
  'host-dead': kernel({ marksHostDown: 'always', recheckHost: true, means: 'another socket to the same endpoint stalled and nothing was heard from the host since' }),
  'peer-closed': kernel({ definitive: true, means: 'CLOSE_WAIT, LAST_ACK or CLOSING for graceMs: the server closed it and pg did not notice' }),
  'vanished': kernel({ definitive: true, means: 'the kernel no longer has the socket (state CLOSE, fd closed or reused, row gone) for graceMs' }),
  'checkout-distrusted': kernel({ definitive: true, means: 'about to be handed out from the idle list, its socket failed the kernel check (not ESTABLISHED, gone, two keepalive probes unanswered): the caller gets another' }),
  'host-unresponsive': kernel({ source: 'probe', marksHostDown: 'always', recheckHost: true, means: 'a probe of the host failed and no socket to it received data within stallMs' }),
  'fenced': topology({ means: 'split-brain: another server of the cluster accepts writes on a higher timeline' }),
  'stale-dns': topology({ means: 'the configured name no longer resolves to the socket\'s IP' }),
  // Also reached from the server (judge/lifecycle-rules.ts): a writer pool's write answered 25006.
  'wrong-role': topology({ recheckHost: true, onServerError: 'retire', means: 'the server no longer satisfies targetSessionAttrs (seen by the topology, or a write answered 25006 read_only_sql_transaction)' }),
  'dual-region': topology({ means: 'single-region writer: the socket is outside the primary\'s region' }),
  // Behind a VIP, a load balancer or a DNS name: the session's server is still fine (else it would be
  // fenced or of the wrong role), so an in-use client finishes and moves when released.
  'rerouted': topology({ inUse: 'retire', means: 'the address now leads to another server (fresh connections reach it, none reached this session\'s server since): the session moves there when released' }),
  'fatal-error': server({ means: 'the backend sent FATAL or PANIC: it is exiting; the query already has the server\'s error' }),
  'server-going-away': server({ recheckHost: true, means: 'the server said it is shutting down, crashed or takes no connections (57P01, 57P02, 57P03) or the connection failed (class 08): its role is read again now' }),
  'connect-timeout': kernel({ source: 'lifecycle', definitive: true, means: 'a connection attempt (TCP, TLS, startup, authentication) did not finish within its deadline' }),
}

/**
 * A verdict: which connection (registry id), which kind, the evidence, and since when. The one shape of a
 * verdict from every rule (kernel-rules adds the endpoint and the host consensus; lifecycle rules, which
 * judge one connection, leave out the id) to the evictor.
 */
export interface Verdict<K extends VerdictKind = VerdictKind> {
  id: number
  kind: K
  evidence: string
  /** When the first evidence appeared (estimate), for time-to-eviction. */
  firstEvidenceAt: number
  /** Rests on the server's own error to the client's holder: the row's onServerError applies in use. */
  serverError?: boolean
}

/** 'login': the check after login refused the session (it is ended quietly, whatever the verdict). */
export type ConnectionPhase = 'connecting' | 'login' | 'idle' | 'in-use'

/**
 * What the evictor does for `kind` to a connection in `phase`, from the table. `serverError`: the verdict
 * rests on the server's own error to the client's holder (the row's onServerError then applies in use).
 */
export function actionFor(kind: VerdictKind, phase: ConnectionPhase, topologyEvictInUse: 'destroy' | 'retire' | 'release', serverError = false): Action {
  const rule = VERDICTS[kind]
  if (phase === 'login') return 'refuse'
  if (phase === 'connecting') return rule.connecting
  if (phase === 'idle') return rule.idle
  if (serverError && rule.onServerError) return rule.onServerError
  if (rule.inUse !== 'topology-policy') return rule.inUse
  return topologyEvictInUse === 'destroy' ? 'destroy' : 'retire'
}

/** Whether `kind` marks its host down; `hostDead`: the kernel rules' host consensus found the host dead. */
export function marksHostDown(kind: VerdictKind, hostDead: boolean): boolean {
  const m = VERDICTS[kind].marksHostDown
  return m === 'always' || (m === 'with-consensus' && hostDead)
}
