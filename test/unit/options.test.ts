import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ConfigError, ErrorCodes, GUARD_DEFAULTS, Pool } from '../../src/index'
import { resolveGuardOptions } from '../../src/options'

describe('guard options', () => {
  it('defaults come from one table, and 0 is a real value', () => {
    assert.deepEqual(resolveGuardOptions(undefined), GUARD_DEFAULTS)
    assert.equal(resolveGuardOptions({ userTimeoutMs: 0 }).userTimeoutMs, 0)
    assert.equal(resolveGuardOptions({ minIdle: 0 }).minIdle, 0)
  })

  const bad: [object, RegExp][] = [
    [{ keepAliveIdleMs: 1500 }, /keepAliveIdleMs must be a whole number of seconds .* got 1500/],
    [{ keepAliveIntervalMs: 0 }, /keepAliveIntervalMs must be a whole number of seconds/],
    [{ keepAliveCount: 0 }, /keepAliveCount must be at least 1/],
    [{ userTimeoutMs: -1 }, /userTimeoutMs must be a non-negative integer, got -1/],
    [{ maxLifetimeJitter: 1 }, /maxLifetimeJitter must be a number in \[0, 1\)/],
    [{ minIdle: '2' }, /minIdle must be a non-negative integer, got "2"/],
    [{ keepaliveIdleMs: 5000 }, /unknown guard option 'keepaliveIdleMs'; known: keepAliveIdleMs/],
  ]
  for (const [opts, message] of bad) {
    it(`rejects ${JSON.stringify(opts)} at construction with a coded error`, () => {
      assert.throws(
        () => new Pool({ host: '127.0.0.1', guard: opts as never }),
        (err: unknown) => err instanceof ConfigError && err.code === ErrorCodes.CONFIG_INVALID && message.test(err.message)
      )
    })
  }

  it('rejects a non-object guard', () => {
    assert.throws(() => resolveGuardOptions(5 as never), /guard must be an object/)
  })

  // Issue "Every query settles": every numeric option is bounded by what consumes it, at construction.
  const TIMERS = [
    'checkIntervalMs', 'topologyIntervalMs', 'probeTimeoutMs', 'connectAttemptTimeoutMs', 'probeAfterMs', 'probeIntervalMs',
    'stallMs', 'stallHardLimitMs', 'graceMs', 'leakDetectionThresholdMs', 'procScanIntervalMs', 'dnsIntervalMs', 'replicationLostMs',
  ] as const
  for (const key of TIMERS) {
    it(`bounds ${key} by setTimeout's limit (2^31-1 ms)`, () => {
      assert.equal(resolveGuardOptions({ [key]: 2 ** 31 - 1 })[key], 2 ** 31 - 1)
      assertConfigError({ [key]: 2 ** 31 }, new RegExp(`guard\\.${key} must be at most 2147483647 \\(setTimeout's limit, 2\\^31-1 ms\\), got 2147483648`))
      assertConfigError({ [key]: 1e10 }, new RegExp(`guard\\.${key} must be at most 2147483647`))
      assertConfigError({ [key]: Infinity }, new RegExp(`guard\\.${key} must be a non-negative integer, got null`))
    })
  }

  const socket: [object, RegExp][] = [
    [{ userTimeoutMs: 1e10 }, /guard\.userTimeoutMs must be at most 2147483647 \(TCP_USER_TIMEOUT is a signed 32-bit int\), got 10000000000/],
    [{ userTimeoutMs: 2 ** 31 }, /guard\.userTimeoutMs must be at most 2147483647/],
    [{ keepAliveIdleMs: 32_768_000 }, /guard\.keepAliveIdleMs must be at most 32767000 \(MAX_TCP_KEEPIDLE, 32767 s\), got 32768000/],
    [{ keepAliveIntervalMs: 32_768_000 }, /guard\.keepAliveIntervalMs must be at most 32767000 \(MAX_TCP_KEEPINTVL, 32767 s\)/],
    [{ keepAliveIdleMs: 1e12 }, /guard\.keepAliveIdleMs must be at most 32767000/],
    [{ keepAliveCount: 128 }, /guard\.keepAliveCount must be at most 127 \(MAX_TCP_KEEPCNT\), got 128/],
    [{ minRetransmits: 256 }, /guard\.minRetransmits must be at most 255 \(tcpi_retransmits is 8 bits\)/],
    [{ minIdle: 2 ** 31 }, /guard\.minIdle must be at most 2147483647/],
  ]
  for (const [opts, message] of socket) {
    it(`bounds ${JSON.stringify(opts)} by what Linux takes`, () => assertConfigError(opts, message))
  }

  it('takes each socket option at its largest kernel value', () => {
    const o = resolveGuardOptions({ userTimeoutMs: 2 ** 31 - 1, keepAliveIdleMs: 32_767_000, keepAliveIntervalMs: 32_767_000, keepAliveCount: 127, minRetransmits: 255 })
    assert.deepEqual([o.userTimeoutMs, o.keepAliveIdleMs, o.keepAliveIntervalMs, o.keepAliveCount, o.minRetransmits], [2 ** 31 - 1, 32_767_000, 32_767_000, 127, 255])
  })

  it('rejects an array as guard, and prototype keys as option names', () => {
    assertConfigError([] as never, /guard must be an object, got an array/)
    assertConfigError(JSON.parse('{"__proto__": {"userTimeoutMs": 1}}'), /unknown guard option '__proto__'/)
    assertConfigError(JSON.parse('{"constructor": 1}'), /unknown guard option 'constructor'/)
    assertConfigError(JSON.parse('{"hasOwnProperty": 1}'), /unknown guard option 'hasOwnProperty'/)
    assertConfigError(JSON.parse('{"toString": null}'), /unknown guard option 'toString'/)
  })

  it('validates inherited values too (an object whose prototype carries options)', () => {
    assertConfigError(Object.create({ userTimeoutMs: 1e10 }), /guard\.userTimeoutMs must be at most/)
  })
})

function assertConfigError(opts: object, message: RegExp): void {
  assert.throws(
    () => new Pool({ host: '127.0.0.1', guard: opts as never }),
    (err: unknown) => err instanceof ConfigError && err.code === ErrorCodes.CONFIG_INVALID && message.test(err.message)
  )
  assert.throws(() => resolveGuardOptions(opts as never), (err: unknown) => err instanceof ConfigError && message.test(err.message))
}
