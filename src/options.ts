/**
 * The guard's options: one defaults table, each value with the reason it is what it is, validated at
 * construction. Units are in the names. `??` everywhere: 0 is a real value.
 */
import { ConfigError } from './errors'

export interface GuardOptions {
  /**
   * Idle time before the kernel sends the first keepalive probe on a pooled socket. Whole seconds.
   * @default 5000
   */
  keepAliveIdleMs?: number
  /** Time between unanswered keepalive probes. Whole seconds. @default 1000 */
  keepAliveIntervalMs?: number
  /** Unanswered probes before the kernel itself drops the socket (ignored by Linux when userTimeoutMs is set). @default 5 */
  keepAliveCount?: number
  /** TCP_USER_TIMEOUT: the kernel drops a socket whose sent data stays unacknowledged this long. 0 = unset. @default 20000 */
  userTimeoutMs?: number
  /** Warn once, with the acquiring stack, when a client is held longer than this. 0 = off. @default 0 */
  leakDetectionThresholdMs?: number
  /** Each client's maxLifetimeSeconds is shortened by up to this fraction, at random, so a pool never expires at once. @default 0.1 */
  maxLifetimeJitter?: number
  /** Keep at least this many idle clients open (never beyond `max`), opening them in the background. @default 0 */
  minIdle?: number
}

export type ResolvedGuardOptions = Required<GuardOptions>

/**
 * Why each default:
 * - keepAliveIdleMs 5 s: an idle socket to a vanished host is probed after 5 s of silence, so the guard sees
 *   it within ~6 s instead of pg's 2 h 11 min. A probe is one empty ACK: negligible even for thousands of sockets.
 * - keepAliveIntervalMs 1 s: a probe that is not answered within a second on a LAN/region link is lost or the
 *   peer is gone; the guard waits for a second unanswered probe before acting, and only with host consensus.
 * - keepAliveCount 5: with TCP_USER_TIMEOUT set Linux ignores it; kept for kernels/platforms where it applies.
 * - userTimeoutMs 20 s: the kernel backstop for when the guard's own loop cannot run (a blocked event loop).
 *   RTO backoff reaches 12.6 s only after 6 consecutive losses of one segment, so 20 s does not cut lossy
 *   but live links; it also bounds keepalive (Linux applies it to unanswered probes too).
 * - leakDetectionThresholdMs 0: off, as in HikariCP; capturing stacks on every acquire has a cost.
 * - maxLifetimeJitter 0.1: HikariCP subtracts up to 2.5 %; 10 % spreads a pool of 10 created together over a
 *   meaningful window even for short lifetimes.
 * - minIdle 0: pg.Pool opens connections on demand; opt in to a warm pool.
 */
export const GUARD_DEFAULTS: ResolvedGuardOptions = {
  keepAliveIdleMs: 5_000,
  keepAliveIntervalMs: 1_000,
  keepAliveCount: 5,
  userTimeoutMs: 20_000,
  leakDetectionThresholdMs: 0,
  maxLifetimeJitter: 0.1,
  minIdle: 0,
}

type Check = (name: string, v: unknown) => void

const wholeSeconds: Check = (name, v) => {
  integer(name, v)
  if ((v as number) < 1000 || (v as number) % 1000 !== 0) {
    throw new ConfigError(`guard.${name} must be a whole number of seconds of at least 1000 (the kernel's unit), got ${String(v)}`)
  }
}
const integer: Check = (name, v) => {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw new ConfigError(`guard.${name} must be a non-negative integer, got ${JSON.stringify(v)}`)
  }
}
const positiveInteger: Check = (name, v) => {
  integer(name, v)
  if ((v as number) < 1) throw new ConfigError(`guard.${name} must be at least 1, got ${String(v)}`)
}
const fraction: Check = (name, v) => {
  if (typeof v !== 'number' || !(v >= 0 && v < 1)) {
    throw new ConfigError(`guard.${name} must be a number in [0, 1), got ${JSON.stringify(v)}`)
  }
}

const CHECKS: Record<keyof ResolvedGuardOptions, Check> = {
  keepAliveIdleMs: wholeSeconds,
  keepAliveIntervalMs: wholeSeconds,
  keepAliveCount: positiveInteger,
  userTimeoutMs: integer,
  leakDetectionThresholdMs: integer,
  maxLifetimeJitter: fraction,
  minIdle: integer,
}

export function resolveGuardOptions(input: GuardOptions | undefined): ResolvedGuardOptions {
  if (input !== undefined && (typeof input !== 'object' || input === null)) {
    throw new ConfigError(`guard must be an object, got ${JSON.stringify(input)}`)
  }
  const given = input ?? {}
  for (const key of Object.keys(given)) {
    if (!(key in CHECKS)) {
      throw new ConfigError(`unknown guard option '${key}'; known: ${Object.keys(CHECKS).join(', ')}`)
    }
  }
  const out = { ...GUARD_DEFAULTS }
  for (const key of Object.keys(CHECKS) as (keyof ResolvedGuardOptions)[]) {
    const v = (given as Record<string, unknown>)[key]
    if (v === undefined) continue
    CHECKS[key](key, v)
    ;(out as Record<string, unknown>)[key] = v
  }
  return out
}
