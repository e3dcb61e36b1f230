/**
 * Which configured hosts count as degraded when a new connection picks its host, pure. Health is judged
 * per remote endpoint (ip:port, health-rules.ts); the connect planner orders configured hosts (host:port).
 * The pool's own sockets map one onto the other: each carries the host it was configured as and the
 * endpoint it reached.
 *
 * - A host the pool has sockets to is degraded when every endpoint those sockets reach is degraded (a DNS
 *   name with one healthy address still has a healthy path); otherwise it is healthy, at once.
 * - A host with no socket left is not measured any more (its sockets moved away, which is the point). It
 *   stays degraded for `ROUTING_HOLD_MS` after it was last seen degraded, then is tried like any host: if
 *   it is still lossy, its new sockets show it again within seconds.
 *
 * Degraded only orders the plan (healthy hosts first); it never removes a host from it and never evicts.
 */
import type { Default } from '../defaults'

/** The hold, with its reason (a row of the shape every defaults table shares). */
export const ROUTING_HOLD: Default = {
  value: 60_000,
  unit: 'ms',
  why:
    'the costs are lopsided: trying a host that is still lossy costs its new connections seconds of slow queries ' +
    'until it is seen degraded again, keeping a recovered host last costs nothing while the others cope (it ' +
    'stays in the plan as a last resort); link faults that degrade rather than cut typically last minutes',
}

export const ROUTING_HOLD_MS = ROUTING_HOLD.value

/** When each degraded host was last seen degraded (ms). Treat as opaque; hand it back next pass. */
export type DegradedHosts = ReadonlyMap<string, number>

export interface RoutingInput {
  now: number
  /** This pass's pooled sockets: configured host ("host:port") and remote endpoint ("ip:port"). */
  sockets: readonly { hostKey: string; endpoint: string }[]
  /** This pass's endpoint health (health-rules.ts assessHealth). */
  health: readonly { endpoint: string; state: 'healthy' | 'degraded' }[]
  memory: DegradedHosts
}

/** One pass: hosts with sockets are re-read from their endpoints; hosts without keep their last mark. */
export function noteDegradedHosts(input: RoutingInput): DegradedHosts {
  // The common case, every pass: nothing degraded now or before.
  if (input.memory.size === 0 && !input.health.some((h) => h.state === 'degraded')) return input.memory
  const state = new Map(input.health.map((h) => [h.endpoint, h.state]))
  const endpoints = new Map<string, Set<string>>()
  for (const s of input.sockets) {
    let set = endpoints.get(s.hostKey)
    if (!set) endpoints.set(s.hostKey, (set = new Set()))
    set.add(s.endpoint)
  }
  const next = new Map(input.memory)
  for (const [hostKey, eps] of endpoints) {
    const judged = [...eps].filter((e) => state.has(e))
    if (judged.length === 0) continue // no health for its sockets yet: keep what we knew
    if (judged.every((e) => state.get(e) === 'degraded')) next.set(hostKey, input.now)
    else next.delete(hostKey)
  }
  return next
}

/** Whether the planner should try `hostKey` after the healthy hosts. */
export function isDegraded(memory: DegradedHosts, hostKey: string, now: number, holdMs = ROUTING_HOLD_MS): boolean {
  const at = memory.get(hostKey)
  return at !== undefined && now - at < holdMs
}
