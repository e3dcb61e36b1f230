/** latency: every chunk waits `latencyMs` ± `jitterMs` before it is passed on (order is kept). */
import { seededRandom, sleep, type Link, Toxic, type ToxicOptions } from './toxic'

export interface LatencyOptions extends ToxicOptions {
  /** Added delay per chunk, ms. */
  latencyMs: number
  /** Uniform jitter around it, ms. @default 0 */
  jitterMs?: number
  /** Seed of the jitter's PRNG: the same seed gives the same delays, chunk after chunk. @default 1 */
  seed?: number
}

export class Latency extends Toxic {
  readonly type = 'latency'
  readonly latencyMs: number
  readonly jitterMs: number
  readonly seed: number
  private readonly random: () => number

  constructor(o: LatencyOptions) {
    super(o)
    this.latencyMs = o.latencyMs
    this.jitterMs = o.jitterMs ?? 0
    this.seed = o.seed ?? 1
    this.random = seededRandom(this.seed)
  }

  /** The delay for the next chunk, ms: latencyMs plus a seeded uniform draw in [-jitterMs, jitterMs). */
  nextDelayMs(): number {
    const jitter = this.jitterMs ? (this.random() * 2 - 1) * this.jitterMs : 0
    return Math.max(0, this.latencyMs + jitter)
  }

  override async pipe(chunk: Buffer, _link: Link): Promise<Buffer> {
    await sleep(this.nextDelayMs())
    return chunk
  }
}
