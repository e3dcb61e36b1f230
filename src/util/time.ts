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
