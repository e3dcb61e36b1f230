/** Small time helpers shared by every layer (no imports: a leaf). */

/** "350 ms", "1.4 s". */
export function fmt(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`
}

/**
 * What `start()` returns, or a rejection "no answer within N ms" once `ms` have passed. The timer is armed
 * before `start` runs, so it is never behind timers that `start` arms itself; it never holds the process.
 */
export function withDeadline<T>(start: () => Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
    timer.unref()
  })
  return Promise.race([start(), deadline]).finally(() => clearTimeout(timer))
}

/**
 * The hot path's time (hand-out and take-back): epoch milliseconds from the monotonic clock. In the V8
 * profile of `SELECT 1` (benchmarks/profile.ts) every clock read costs the client ~0.4-0.6 % of its CPU at
 * one read per checkout: `Date.now()` (a C++ builtin entered through V8's runtime) ~0.6 %, process.hrtime()
 * (a fast API call, but an array per call) ~0.55 %, `performance.now()` ~0.45 %.
 */
export function monoNow(): number {
  return Math.floor(PERF_ORIGIN + perf.now()) // whole milliseconds, as Date.now() gives
}
const perf = performance
const PERF_ORIGIN = perf.timeOrigin

/**
 * The same time, coarse: a variable, refreshed every COARSE_CLOCK_MS by one unref'd process-wide timer
 * while any guard holds it, so a reading is at most COARSE_CLOCK_MS behind — and as far behind as the
 * event loop has been blocked since its last refresh, never ahead.
 */
export const COARSE_CLOCK_MS = 20

/** `coarseClock.now`: a property read, no call. */
export const coarseClock = { now: monoNow() }
let coarseTimer: NodeJS.Timeout | undefined
let coarseHolders = 0

/** Keeps the coarse clock running; the function returned lets go (idempotent). */
export function holdCoarseClock(): () => void {
  coarseHolders++
  if (coarseTimer === undefined) {
    coarseClock.now = monoNow()
    coarseTimer = setInterval(() => {
      coarseClock.now = monoNow()
    }, COARSE_CLOCK_MS)
    coarseTimer.unref()
  }
  let held = true
  return () => {
    if (!held) return
    held = false
    if (--coarseHolders === 0 && coarseTimer !== undefined) {
      clearInterval(coarseTimer)
      coarseTimer = undefined
    }
  }
}
