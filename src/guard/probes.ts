/**
 * Host probes on demand: the judge asks for a probe of an endpoint, this runs at most one at a time per
 * endpoint and at most one per minIntervalMs, and keeps the latest result per endpoint as a fact for the
 * next tick. A finished probe only records its result and calls `onResult`; it never runs the judge.
 */
import { type ProbeTarget, probe } from './probe'
import type { ProbeResult } from '../judge/kernel-rules'

export class Probes {
  /** Latest finished probe per endpoint: a fact for the judge. */
  readonly results = new Map<string, ProbeResult>()
  private readonly running = new Set<string>()
  private readonly lastAt = new Map<string, number>()
  private stopped = false

  constructor(
    private readonly poolOptions: object,
    private readonly timeoutMs: number,
    private readonly onResult: (r: ProbeResult) => void,
    private readonly run: typeof probe = probe
  ) {}

  request(target: ProbeTarget, minIntervalMs: number, now: number): void {
    const { endpoint } = target
    if (this.stopped || this.running.has(endpoint) || now - (this.lastAt.get(endpoint) ?? -Infinity) < minIntervalMs) return
    this.running.add(endpoint)
    this.lastAt.set(endpoint, now)
    void this.run(this.poolOptions, target, this.timeoutMs).then((result) => {
      this.running.delete(endpoint)
      if (this.stopped) return
      this.results.set(endpoint, result)
      this.onResult(result)
    })
  }

  stop(): void {
    this.stopped = true
  }
}
