/** reset-peer: `timeoutMs` after reaching a link, ends it with a TCP RST (a crashed peer, a firewall reset). */
import { type Link, Toxic, type ToxicOptions, unrefTimer } from './toxic'

export interface ResetPeerOptions extends ToxicOptions {
  /** Reset this long after the toxic reached the link, ms. @default 0 (at once) */
  timeoutMs?: number
}

export class ResetPeer extends Toxic {
  readonly type = 'reset-peer'
  readonly timeoutMs: number
  private readonly timers = new Map<Link, NodeJS.Timeout>()

  constructor(o: ResetPeerOptions = {}) {
    super(o)
    this.timeoutMs = o.timeoutMs ?? 0
  }

  override attach(link: Link): void {
    if (this.timers.has(link)) return
    this.timers.set(link, unrefTimer(() => link.reset(), this.timeoutMs))
  }

  override detach(link: Link): void {
    clearTimeout(this.timers.get(link))
    this.timers.delete(link)
  }
}
