/**
 * The verdict table: every reason the guard retires or destroys a connection, where the verdict comes
 * from, and what it does to a connection in each state. The evictor (guard/evictor.ts) reads nothing but
 * this table to decide what to do; the rules that reach each verdict live beside it in judge/.
 *
 * Adding a verdict = one row here, one rule (kernel-rules.ts, topology-rules.ts or lifecycle-rules.ts) and
 * one line in the table test (test/unit/verdicts.test.ts).
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
 * - none: nothing to do: pg-pool removes an idle client that errors by itself, and pg fails a connect that
 *   gets an ErrorResponse with the server's own error.
 */
export type Action = 'remove' | 'destroy' | 'retire' | 'fail' | 'none'

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
  /** The whole host is judged gone: new connections avoid it, its DNS name and role are checked again now. */
  marksHostDown: boolean
  /** One line for the README and for evidence-less readers. */
  means: string
}

export const VERDICTS: { readonly [K in VerdictKind]: VerdictRule } = {
  'zombie-unacked':    { source: 'kernel',    definitive: false, idle: 'remove', inUse: 'destroy',         connecting: 'fail', marksHostDown: false, means: 'data unacknowledged, retransmitting, no ACK for stallMs, and the host heard from by no other socket' },
  'zombie-keepalive':  { source: 'kernel',    definitive: false, idle: 'remove', inUse: 'destroy',         connecting: 'fail', marksHostDown: false, means: 'two or more keepalive probes unanswered' },
  'host-dead':         { source: 'kernel',    definitive: false, idle: 'remove', inUse: 'destroy',         connecting: 'fail', marksHostDown: true,  means: 'another socket to the same endpoint stalled and nothing was heard from the host since' },
  'peer-closed':       { source: 'kernel',    definitive: true,  idle: 'remove', inUse: 'destroy',         connecting: 'fail', marksHostDown: false, means: 'CLOSE_WAIT, LAST_ACK or CLOSING for graceMs: the server closed it and pg did not notice' },
  'vanished':          { source: 'kernel',    definitive: true,  idle: 'remove', inUse: 'destroy',         connecting: 'fail', marksHostDown: false, means: 'the kernel no longer has the socket (state CLOSE, fd closed or reused, row gone) for graceMs' },
  'checkout-distrusted': { source: 'kernel', definitive: true,  idle: 'remove', inUse: 'destroy',         connecting: 'fail', marksHostDown: false, means: 'about to be handed out from the idle list, its socket failed the kernel check (not ESTABLISHED, gone, two keepalive probes unanswered): the caller gets another' },
  'host-unresponsive': { source: 'probe',     definitive: false, idle: 'remove', inUse: 'destroy',         connecting: 'fail', marksHostDown: true,  means: 'a probe of the host failed and no socket to it received data within stallMs' },
  'fenced':            { source: 'topology',  definitive: true,  idle: 'remove', inUse: 'topology-policy', connecting: 'fail', marksHostDown: false, means: 'split-brain: another host of the cluster accepts writes on a higher timeline' },
  'stale-dns':         { source: 'topology',  definitive: true,  idle: 'remove', inUse: 'topology-policy', connecting: 'fail', marksHostDown: false, means: 'the configured name no longer resolves to the socket\'s IP' },
  // Also reached from the server (judge/lifecycle-rules.ts): a writer pool's write answered 25006.
  'wrong-role':        { source: 'topology',  definitive: true,  idle: 'remove', inUse: 'topology-policy', connecting: 'fail', marksHostDown: false, means: 'the server no longer satisfies targetSessionAttrs (seen by the topology, or a write answered 25006 read_only_sql_transaction)' },
  'dual-region':       { source: 'topology',  definitive: true,  idle: 'remove', inUse: 'topology-policy', connecting: 'fail', marksHostDown: false, means: 'single-region writer: the socket is outside the primary\'s region' },
  // Behind a VIP, a load balancer or a DNS name: the session's server is still fine (else it would be
  // fenced or of the wrong role), so an in-use client finishes and moves when released.
  'rerouted':          { source: 'topology',  definitive: true,  idle: 'remove', inUse: 'retire',          connecting: 'fail', marksHostDown: false, means: 'the address now leads to another server (fresh connections reach it, none reached this session\'s server since): the session moves there when released' },
  'fatal-error':       { source: 'server',    definitive: true,  idle: 'none',   inUse: 'retire',          connecting: 'none', marksHostDown: false, means: 'the backend sent FATAL or PANIC: it is exiting; the query already has the server\'s error' },
  'server-going-away': { source: 'server',    definitive: true,  idle: 'none',   inUse: 'retire',          connecting: 'none', marksHostDown: false, means: 'the server said it is shutting down, crashed or takes no connections (57P01, 57P02, 57P03) or the connection failed (class 08): its role is read again now' },
  'connect-timeout':   { source: 'lifecycle', definitive: true,  idle: 'remove', inUse: 'destroy',         connecting: 'fail', marksHostDown: false, means: 'a connection attempt (TCP, TLS, startup, authentication) did not finish within its deadline' },
}

export type ConnectionPhase = 'connecting' | 'idle' | 'in-use'

/**
 * What the evictor does for `kind` to a connection in `phase`. `serverError`: the verdict comes from the
 * server's own error to the client's holder (a 25006): an in-use client is then retired, never destroyed
 * under a caller who already has the server's error, whatever the row says.
 */
export function actionFor(kind: VerdictKind, phase: ConnectionPhase, topologyEvictInUse: 'destroy' | 'retire' | 'release', serverError = false): Action {
  const rule = VERDICTS[kind]
  if (phase === 'connecting') return rule.connecting
  if (phase === 'idle') return rule.idle
  if (serverError) return 'retire'
  if (rule.inUse !== 'topology-policy') return rule.inUse
  return topologyEvictInUse === 'destroy' ? 'destroy' : 'retire'
}
