/**
 * When the scheduler looks at the kernel, pure. A pool with queries in flight is sampled every
 * checkIntervalMs; a pool at rest needs no quarter-second watch (its sockets can only show keepalive
 * trouble, which takes seconds to build up), so it is looked at every IDLE_EVERY_MS, and at full cadence
 * again as soon as anything looks unusual (a keepalive probe out, a socket closing or gone).
 *
 * /proc/net/tcp costs tens of ms on a host with 20k sockets: it is read on its own interval, at once on
 * suspicion (or every second as the detector when TCP_INFO is unavailable), and never more often than a
 * budget of 0.03 % of a core allows: a read that took X ms is not repeated for PROC_COST_MULTIPLE · X ms.
 */

export const IDLE_EVERY_MS = 1000
/** A /proc read that took X ms waits this many times X before the next: 1/3000 = 0.03 % of a core. */
export const PROC_COST_MULTIPLE = 3000

export interface CadenceState {
  lastIdlePassAt: number
  lastProcScanAt: number
  lastProcScanCostMs: number
  /** Something was suspect last pass (a stall, a probe wanted): read /proc soon, keep the full cadence. */
  suspicion: boolean
  /** Something was not quiet last pass (a probe out, a socket closing): keep the full cadence. */
  unusual: boolean
}

export interface CadenceOptions {
  checkIntervalMs: number
  procScanIntervalMs: number
}

export interface CadenceInput {
  now: number
  inFlight: boolean
  /** TCP_INFO can be read: it is the detector and /proc only the cross-check. */
  sampling: boolean
  /** Asked for explicitly (guard.check(), a finished probe). */
  forcedPass: boolean
  forcedProc: boolean
}

export function initialCadence(now: number): CadenceState {
  // The first cross-check waits a full interval: TCP_INFO covers the pool meanwhile.
  return { lastIdlePassAt: -Infinity, lastProcScanAt: now, lastProcScanCostMs: 0, suspicion: false, unusual: false }
}

export function planPass(s: CadenceState, o: CadenceOptions, i: CadenceInput): { pass: boolean; readProc: boolean } {
  const calm = !i.inFlight && !s.unusual && !s.suspicion
  if (calm && !i.forcedPass && !i.forcedProc && i.now - s.lastIdlePassAt < Math.max(IDLE_EVERY_MS, o.checkIntervalMs)) {
    return { pass: false, readProc: false }
  }
  const sinceScan = i.now - s.lastProcScanAt
  const budgetOk = sinceScan >= s.lastProcScanCostMs * PROC_COST_MULTIPLE
  const fallbackEvery = i.inFlight || s.suspicion ? Math.min(1000, o.procScanIntervalMs || 1000) : o.procScanIntervalMs || 1000
  const due = i.sampling
    ? (o.procScanIntervalMs > 0 && sinceScan >= o.procScanIntervalMs) || (s.suspicion && sinceScan >= 1000)
    : sinceScan >= fallbackEvery
  return { pass: true, readProc: i.forcedProc || (budgetOk && due) }
}

/** The state after a pass. */
export function afterPass(s: CadenceState, i: CadenceInput, r: { readProc: boolean; procCostMs: number; suspicion: boolean; unusual: boolean }): CadenceState {
  return {
    lastIdlePassAt: i.inFlight ? -Infinity : i.now,
    lastProcScanAt: r.readProc ? i.now : s.lastProcScanAt,
    lastProcScanCostMs: r.readProc ? r.procCostMs : s.lastProcScanCostMs,
    suspicion: r.suspicion,
    unusual: r.unusual,
  }
}
