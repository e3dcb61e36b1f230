/** Shared test helpers: a cluster per test file, event waiting, and a condition poller for state that has no event. */
import { after, before } from 'node:test'
import type { EventEmitter } from 'node:events'
import { type Cluster, type ClusterOptions, startCluster } from '../src/testing/cluster'

/** Starts a cluster before the file's tests and stops it after; `get()` returns it. */
export function useCluster(options: ClusterOptions = {}): { get(): Cluster } {
  let cluster: Cluster | undefined
  before(async () => {
    cluster = await startCluster(options)
  })
  after(async () => {
    await cluster?.stop()
  })
  return {
    get() {
      if (!cluster) throw new Error('cluster not started')
      return cluster
    },
  }
}

/**
 * Resolves with the event's arguments, or rejects after timeoutMs naming the event. Unlike events.once it
 * does not reject when the emitter emits 'error' meanwhile (pools do, by design).
 */
export function nextEvent<T extends unknown[] = unknown[]>(emitter: EventEmitter, event: string, timeoutMs = 10_000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => {
      emitter.off(event, listener)
      reject(new Error(`no '${event}' event within ${timeoutMs} ms`))
    }, timeoutMs)
    const listener = (...args: unknown[]): void => {
      clearTimeout(t)
      resolve(args as T)
    }
    emitter.once(event, listener)
  })
}

/** Resolves when `emitter` has emitted `event` `n` times from now. */
export function events(emitter: EventEmitter, event: string, n: number, timeoutMs = 10_000): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let seen = 0
    const t = setTimeout(() => {
      emitter.off(event, listener)
      reject(new Error(`saw ${seen} of ${n} '${event}' events within ${timeoutMs} ms`))
    }, timeoutMs)
    const listener = (): void => {
      if (++seen < n) return
      clearTimeout(t)
      emitter.off(event, listener)
      resolve()
    }
    emitter.on(event, listener)
    if (n === 0) listener()
  })
}

/**
 * Polls `cond` until it holds. Only for state with no event to wait on (replication catching up, a kernel
 * table changing); fails with `what` after timeoutMs.
 */
export async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000, everyMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

/** Captures process warnings with a given code while `fn` runs. */
export async function captureWarnings(code: string, fn: () => Promise<void>): Promise<Error[]> {
  const seen: Error[] = []
  const listener = (w: Error & { code?: string }): void => {
    if (w.code === code) seen.push(w)
  }
  process.on('warning', listener)
  try {
    await fn()
    await new Promise((r) => setImmediate(r)) // warnings are emitted on nextTick
  } finally {
    process.off('warning', listener)
  }
  return seen
}

/**
 * For kernel-fault tests: the reason they cannot run here (not root, no iptables), printed so a skip is
 * never silent; undefined when they can.
 */
export function kernelSkip(file: string): string | undefined {
  // Loaded lazily so unit tests do not pull in child_process calls.
  const { kernelFaultsUnavailable } = require('../src/testing/kernel-faults') as typeof import('../src/testing/kernel-faults')
  const why = kernelFaultsUnavailable() ?? undefined
  if (why) console.log(`# SKIP ${file}: ${why}`)
  return why
}

/**
 * For kernel-fault tests: a cluster, and `cut()` that blackholes its primary's port; every fault is removed
 * after the file's tests (also when one fails).
 */
export function useBlackholedCluster(options: ClusterOptions): { cluster: { get(): Cluster }; cut(): Promise<import('../src/testing/kernel-faults').KernelFault> } {
  const cluster = useCluster(options)
  const faults: import('../src/testing/kernel-faults').KernelFault[] = []
  after(async () => {
    for (const f of faults) await f.remove()
  })
  return {
    cluster,
    async cut() {
      const { blackhole } = require('../src/testing/kernel-faults') as typeof import('../src/testing/kernel-faults')
      const c = cluster.get()
      const f = await blackhole(c.primary.host, { port: c.port })
      faults.push(f)
      return f
    },
  }
}
