/**
 * Host probes on demand: the judge asks for a probe of an endpoint, this runs at most one at a time per
 * endpoint and at most one per minIntervalMs, and keeps the latest result per endpoint as a fact for the
 * next tick. A finished probe only records its result and calls `onResult`; it never runs the judge.
 */
import { type ProbeTarget, probe } from './host-probe'
import type { ProbeResult } from '../judge/kernel-rules'

/** At most this many recovery probes of one host in flight: a probe whose SYN was dropped is not waited for. */
const RECOVERY_IN_FLIGHT = 3

export class HostProbes {
  /** Latest finished probe per endpoint: a fact for the judge. */
  readonly results = new Map<string, ProbeResult>()
  private readonly running = new Set<string>()
  private readonly lastAt = new Map<string, number>()
  private readonly recovering = new Map<string, { inFlight: number; lastAt: number }>()
  private stopped = false

  constructor(
    private readonly poolOptions: object,
    /** The deadline for a probe of a host (it adapts to the host's measured login time). */
    private readonly timeoutFor: (hostKey: string) => number,
    private readonly onResult: (r: ProbeResult) => void,
    /** A recovery probe of a down host got an answer. */
    private readonly onRecovered: (hostKey: string, r: ProbeResult) => void,
    private readonly run: typeof probe = probe
  ) {}

  /** A probe for the judge (a query waits with no data; kernel suspicion). */
  request(target: ProbeTarget & { hostKey: string }, minIntervalMs: number, now: number): void {
    const { endpoint } = target
    if (this.stopped || this.running.has(endpoint) || now - (this.lastAt.get(endpoint) ?? -Infinity) < minIntervalMs) return
    this.running.add(endpoint)
    this.lastAt.set(endpoint, now)
    void this.run(this.poolOptions, target, this.timeoutFor(target.hostKey)).then((result) => {
      this.running.delete(endpoint)
      if (this.stopped) return
      this.results.set(endpoint, result)
      this.onResult(result)
    })
  }

  /**
   * A host is down: probe it every `everyMs` (overlapping, up to RECOVERY_IN_FLIGHT at once) until one
   * probe gets an answer. New connections fail at once meanwhile; this is how they start working again.
   */
  recover(hostKey: string, target: ProbeTarget, everyMs: number, now: number): void {
    const r = this.recovering.get(hostKey) ?? { inFlight: 0, lastAt: -Infinity }
    this.recovering.set(hostKey, r)
    if (this.stopped || r.inFlight >= RECOVERY_IN_FLIGHT || now - r.lastAt < everyMs) return
    r.inFlight++
    r.lastAt = now
    void this.run(this.poolOptions, target, this.timeoutFor(hostKey)).then((result) => {
      r.inFlight--
      if (this.stopped || !result.alive || this.recovering.get(hostKey) !== r) return
      this.recovering.delete(hostKey)
      this.onRecovered(hostKey, result)
    })
  }

  /** The host is up again (however that was learnt): stop recovering it. */
  recovered(hostKey: string): void {
    this.recovering.delete(hostKey)
  }

  stop(): void {
    this.stopped = true
  }
}
