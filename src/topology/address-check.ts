/**
 * An address check: a new TCP connection to a configured address, one identity query, closed. New, so
 * that whatever stands behind the address — a VIP, an L4 load balancer, a Kubernetes Service, a DNS name —
 * decides again where it leads: connections already open stay pinned where they were (conntrack, the
 * balancer's session table), and so would a monitoring connection kept open. A pooled client's own login
 * is such a check too (topology.observeLogin); this one runs when no login happened for a while.
 *
 * It also lists a primary's standbys (pg_stat_replication's client addresses), for the guard to watch them
 * for a promotion (topology.ts, "discovered" hosts).
 */
import pg from 'pg'
import { backendPidOf, closeOwn, connectOwn, rawSocketOf } from '../pg/internals'
import { ownClient } from '../pg/client-classes'
import { withDeadline } from '../util/time'
import type { IdentityReader, SessionIdentity } from './identity'

export interface AddressCheckResult {
  identity: SessionIdentity | null
  /** The IP the connection reached (follows DNS), as the client saw it. */
  ip: string | null
  error: string | null
  at: number
}

export async function checkAddress(config: Record<string, unknown>, reader: IdentityReader, timeoutMs: number): Promise<AddressCheckResult> {
  const c = withHidden(config)
  c.application_name = 'pg-pool-guard address check'
  const client = ownClient(pg, c)
  client.on('error', () => {})
  try {
    const identity = await withDeadline(async () => {
      await connectOwn(client)
      return reader.read(client, backendPidOf(client), true)
    }, timeoutMs)
    const ip = rawSocketOf(client)?.remoteAddress ?? null
    client.end().catch(() => {})
    return { identity, ip, error: null, at: Date.now() }
  } catch (err) {
    closeOwn(client, new Error('address check abandoned'))
    return { identity: null, ip: null, error: (err as Error).message, at: Date.now() }
  }
}

/** A copy keeping property descriptors: the password stays non-enumerable. */
function withHidden(config: Record<string, unknown>): Record<string, unknown> {
  return Object.defineProperties({}, Object.getOwnPropertyDescriptors(config)) as Record<string, unknown>
}
