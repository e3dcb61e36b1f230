/**
 * The guard's public shapes that its parts share: the events a Guard emits, and how it joins its pool. A
 * leaf of the guard folder (types only): guard.ts and assemble.ts both read it.
 */
import type { HealthTransition } from '../judge/health-rules'
import type { ProbeResult } from '../judge/kernel-rules'
import type { ReplicationTransition } from '../judge/replication-rules'
import type { HookBinding } from '../pg/hooks'
import type { HostState } from '../topology/topology'
import type { EvictionActions, EvictionEvent } from './evictor'
import type { LeakReport } from './housekeeping'

export type { EvictionEvent, LeakReport }

/** How the guard joins its pool: `binding` for a pool built with the guarded Client class (pool/pool.ts). */
export interface Attachment {
  binding?: HookBinding
  /** How to act on this owner's clients, where it is not a pg-pool (guard/standalone.ts). */
  actions?: EvictionActions
  /** Before the default pool name (server.address:server.port/db.namespace), e.g. 'standalone '. */
  namePrefix?: string
}

export interface GuardEvents {
  /** A host turned degraded or healthy again (from its sockets' TCP_INFO), with the evidence. */
  health: [HealthTransition]
  leak: [LeakReport]
  evict: [EvictionEvent]
  probe: [ProbeResult]
  /**
   * A host's replication link turned `lost` (a standby without its upstream, a primary without a standby:
   * the moment before a promotion) or `ok` again, with the evidence. A warning: nothing is evicted for it.
   */
  replication: [ReplicationTransition]
  topology: [HostState]
}
