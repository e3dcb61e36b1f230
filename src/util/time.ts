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
 * The clock of the hot path (hand-out and take-back), coarse: `Date.now()` costs ~60-100 ns, and two reads
 * per checkout were ~1 % of the client's CPU on `SELECT 1` in the V8 profile (benchmarks/profile.ts). This
 * one is a variable, refreshed every COARSE_CLOCK_MS by one unref'd process-wide timer while any guard holds
 * it, so a reading is at most COARSE_CLOCK_MS (plus a blocked event loop) behind Date.now().
 */
export const COARSE_CLOCK_MS = 20

/** `coarseClock.now`: a property read, no call (the hot path reads it twice per checkout). */
export const coarseClock = { now: Date.now() }
let coarseTimer: NodeJS.Timeout | undefined
let coarseHolders = 0

/** Keeps the coarse clock running; the function returned lets go (idempotent). */
export function holdCoarseClock(): () => void {
  coarseHolders++
  if (coarseTimer === undefined) {
    coarseClock.now = Date.now()
    coarseTimer = setInterval(() => {
      coarseClock.now = Date.now()
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
