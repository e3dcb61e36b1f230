/**
 * The checkout check: before pg-pool hands out an idle client, one TCP_INFO sample of its socket through
 * the kernel port (a getsockopt, no round trip), judged by judge/checkout-rules.ts. A socket the kernel
 * already distrusts is evicted through the one evictor (verdict checkout-distrusted) and never reaches a
 * caller; the adapter then serves the caller from the next idle client or a new connection.
 */
import type { Client } from 'pg'
import { judgeCheckout } from '../judge/checkout-rules'
import type { KernelPort } from '../kernel/port'
import type { ResolvedGuardOptions } from '../options'
import { asIdleWhileHandingOut, fdOf } from '../pg/adapter'
import type { Evictor } from './evictor'
import type { Registry } from './registry'

export interface CheckoutDeps {
  registry: Registry
  kernel: KernelPort
  options: ResolvedGuardOptions
  evictor: Evictor
}

/** The pool's `checkout` hook, or undefined when there is nothing to check with (option off, no TCP_INFO here). */
export function checkoutCheck(d: CheckoutDeps): ((client: Client) => boolean) | undefined {
  if (!d.options.checkoutCheck || d.kernel.samplingUnavailable() !== null) return undefined
  return (client) => {
    const rec = d.registry.get(client)
    if (!rec || rec.transport !== 'tcp' || rec.state !== 'idle' || rec.verdict !== null) return true
    const now = Date.now()
    if (rec.lastReleasedAt !== null && now - rec.lastReleasedAt < d.options.checkoutCheckIdleMs) return true
    const fd = fdOf(rec.socket)
    const why = rec.goneReason ?? judgeCheckout(fd === undefined ? undefined : d.kernel.glance(fd))
    if (why === null) return true
    asIdleWhileHandingOut(client, () => d.evictor.evict(rec, { kind: 'checkout-distrusted', evidence: `checkout check: ${why}`, firstEvidenceAt: now }, now))
    return false
  }
}
