/**
 * timeout: stops all data, and closes the link after `timeoutMs` (0: never closes; data is dropped until
 * the toxic is removed), as toxiproxy's timeout toxic does.
 */
import { type Link, Toxic, type ToxicOptions, unrefTimer } from './toxic'

export interface TimeoutOptions extends ToxicOptions {
  /** Close the link this long after the toxic reached it, ms; 0 = never. */
  timeoutMs: number
}

export class Timeout extends Toxic {
  readonly type = 'timeout'
  readonly timeoutMs: number
  private readonly timers = new Map<Link, NodeJS.Timeout>()

  constructor(o: TimeoutOptions) {
    super(o)
    this.timeoutMs = o.timeoutMs
  }

  override pipe(_chunk: Buffer, _link: Link): null {
    return null
  }

  override attach(link: Link): void {
    if (this.timeoutMs === 0 || this.timers.has(link)) return
    this.timers.set(link, unrefTimer(() => link.close(), this.timeoutMs))
  }

  override detach(link: Link): void {
    clearTimeout(this.timers.get(link))
    this.timers.delete(link)
  }
}
