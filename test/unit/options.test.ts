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
})
