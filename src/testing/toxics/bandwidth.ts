/** bandwidth: chunks pass at most `rateKBps` kilobytes a second. */
import { ConfigError } from '../../errors'
import { sleep, type Link, Toxic, type ToxicOptions } from './toxic'

export interface BandwidthOptions extends ToxicOptions {
  /** Throughput ceiling, KB (1024 bytes) per second. */
  rateKBps: number
}

export class Bandwidth extends Toxic {
  readonly type = 'bandwidth'
  readonly rateKBps: number

  constructor(o: BandwidthOptions) {
    super(o)
    if (!(o.rateKBps > 0)) throw new ConfigError(`rateKBps must be > 0, got ${o.rateKBps}`)
    this.rateKBps = o.rateKBps
  }

  override async pipe(chunk: Buffer, _link: Link): Promise<Buffer> {
    await sleep((chunk.length / (this.rateKBps * 1024)) * 1000)
    return chunk
  }
}
