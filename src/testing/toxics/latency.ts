/** latency: every chunk waits `latencyMs` ± `jitterMs` before it is passed on (order is kept). */
import { sleep, type Link, Toxic, type ToxicOptions } from './toxic'

export interface LatencyOptions extends ToxicOptions {
  /** Added delay per chunk, ms. */
  latencyMs: number
  /** Uniform jitter around it, ms. @default 0 */
  jitterMs?: number
}

export class Latency extends Toxic {
  readonly type = 'latency'
  readonly latencyMs: number
  readonly jitterMs: number

  constructor(o: LatencyOptions) {
    super(o)
    this.latencyMs = o.latencyMs
    this.jitterMs = o.jitterMs ?? 0
  }

  override async pipe(chunk: Buffer, _link: Link): Promise<Buffer> {
    const jitter = this.jitterMs ? (Math.random() * 2 - 1) * this.jitterMs : 0
    await sleep(Math.max(0, this.latencyMs + jitter))
    return chunk
  }
}
