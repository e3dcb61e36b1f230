/** slow-close: when the side feeding this direction closes, the close is passed on `delayMs` later. */
import { sleep, type Link, Toxic, type ToxicOptions } from './toxic'

export interface SlowCloseOptions extends ToxicOptions {
  /** Delay of the close, ms. */
  delayMs: number
}

export class SlowClose extends Toxic {
  readonly type = 'slow-close'
  readonly delayMs: number

  constructor(o: SlowCloseOptions) {
    super(o)
    this.delayMs = o.delayMs
  }

  override async beforeClose(_link: Link): Promise<void> {
    await sleep(this.delayMs)
  }
}
