/** A query loop for "every query settles" tests: N workers, each query's start, end and outcome recorded. */
export interface Outcome {
  startedAt: number
  endedAt: number
  ok: boolean
  code: string | undefined
}

export interface QueryLoop {
  outcomes: Outcome[]
  /** Queries started and not yet settled, with their start times. */
  pending(): number[]
  /** First success that started at or after `t`. */
  firstOkAfter(t: number): Outcome | undefined
  /** The longest any query was held (settled ones, and pending ones until now). */
  longestHeldMs(from?: number): number
  stop(): Promise<void>
}

export function queryLoop(run: () => Promise<unknown>, { workers = 8, pauseMs = 10, errorPauseMs = 50 } = {}): QueryLoop {
  const outcomes: Outcome[] = []
  const inFlight = new Map<number, number>()
  let next = 0
  let stopping = false
  const worker = async (): Promise<void> => {
    while (!stopping) {
      const id = next++
      const startedAt = Date.now()
      inFlight.set(id, startedAt)
      let ok = true
      let code: string | undefined
      try {
        await run()
      } catch (err) {
        ok = false
        code = (err as { code?: string }).code ?? (err as Error).message
      }
      inFlight.delete(id)
      outcomes.push({ startedAt, endedAt: Date.now(), ok, code })
      await new Promise((r) => setTimeout(r, ok ? pauseMs : errorPauseMs))
    }
  }
  const all = Array.from({ length: workers }, () => worker())
  return {
    outcomes,
    pending: () => [...inFlight.values()],
    firstOkAfter: (t) => outcomes.filter((o) => o.ok && o.startedAt >= t).sort((a, b) => a.endedAt - b.endedAt)[0],
    longestHeldMs: (from = 0) => {
      const now = Date.now()
      const settled = outcomes.filter((o) => o.endedAt >= from).map((o) => o.endedAt - Math.max(o.startedAt, from))
      const open = [...inFlight.values()].map((s) => now - Math.max(s, from))
      return Math.max(0, ...settled, ...open)
    },
    async stop() {
      stopping = true
      await Promise.all(all)
    },
  }
}
