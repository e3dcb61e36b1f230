/**
 * The one small interface every toxic implements, in the spirit of toxiproxy's toxics/: a toxic sees the
 * chunks flowing one way through a proxied connection (a "link") and may delay, drop or pass them, or act
 * on the link itself (reset it, close it later). Every toxic has a direction and a toxicity: the
 * probability, drawn once per link, that it applies to that link at all.
 */
import type { Socket } from 'node:net'
import { ConfigError } from '../../errors'

export type Direction = 'upstream' | 'downstream'

/** One proxied connection: the client's socket and the socket to the real server. */
export interface Link {
  readonly id: number
  readonly client: Socket
  readonly server: Socket
  /** Ends the link with a TCP RST to the client (and closes the upstream side). */
  reset(): void
  /** Ends the link gracefully (FIN both ways). */
  close(): void
  readonly closed: boolean
}

export interface ToxicOptions {
  /** 'upstream' = client to server, 'downstream' = server to client. @default 'downstream' */
  direction?: Direction
  /** Probability in [0, 1] that the toxic applies to a given link. @default 1 */
  toxicity?: number
}

export abstract class Toxic {
  abstract readonly type: string
  readonly direction: Direction
  readonly toxicity: number
  private readonly applies = new WeakMap<Link, boolean>()

  constructor(options: ToxicOptions = {}) {
    this.direction = options.direction ?? 'downstream'
    this.toxicity = options.toxicity ?? 1
    if (!(this.toxicity >= 0 && this.toxicity <= 1)) throw new ConfigError(`toxicity must be in [0, 1], got ${this.toxicity}`)
  }

  /** Whether this toxic applies to `link` (drawn once per link with `random`). */
  appliesTo(link: Link, random: () => number): boolean {
    let v = this.applies.get(link)
    if (v === undefined) {
      v = this.toxicity >= 1 || random() < this.toxicity
      this.applies.set(link, v)
    }
    return v
  }

  /** A chunk going this toxic's way: resolve with what to forward (the chunk, or null to drop it). */
  pipe(chunk: Buffer, _link: Link): Promise<Buffer | null> | Buffer | null {
    return chunk
  }

  /** The toxic was added while `link` was open, or `link` opened while the toxic is active. */
  attach(_link: Link): void {}

  /** The toxic was removed: cancel anything pending for `link`. */
  detach(_link: Link): void {}

  /** The side feeding this direction ended; resolve when the end may be passed on (slow-close). */
  beforeClose(_link: Link): Promise<void> | void {}
}

/**
 * A toxic's wait. Unref'd, like every timer of a toxic: an open link keeps the process alive through its
 * sockets, and a toxic alone must never keep a finished test run from exiting.
 */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref())

/** A timer that does not keep the process alive (see `sleep`). */
export const unrefTimer = (fn: () => void, ms: number): NodeJS.Timeout => setTimeout(fn, ms).unref()

/**
 * mulberry32: a small seeded PRNG (32-bit state, uniform in [0, 1)), so a toxic's randomness replays
 * exactly from its seed.
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
