/**
 * The lifecycle rules without a server: which server messages prove a socket is in the wrong place
 * (25006 on a writer pool, 57P01/57P02/57P03, class 08), which are only FATAL, and which are nobody's business.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { judgeLifecycle, type LifecycleFact } from '../../src/judge/lifecycle-rules'
import { VERDICTS } from '../../src/judge/verdicts'

/** Whether the host is read again: the verdict table's column for the verdict's kind. */
const rechecks = (v: { kind: keyof typeof VERDICTS } | null | undefined): boolean | undefined => (v ? VERDICTS[v.kind].recheckHost : undefined)

const said = (severity: string, code: string | undefined, needsWriter = true): LifecycleFact => ({
  kind: 'server-error', severity, code, message: 'words', needsWriter, at: 1000,
})

describe('lifecycle rules: server messages', () => {
  it('25006 on a pool that needs a writer: wrong-role, the SQLSTATE as evidence, host re-read, holder keeps its error', () => {
    const v = judgeLifecycle(said('ERROR', '25006'))
    assert.deepEqual(v && { kind: v.kind, serverError: v.serverError, recheckHost: rechecks(v), at: v.firstEvidenceAt }, {
      kind: 'wrong-role', serverError: true, recheckHost: true, at: 1000,
    })
    assert.match(v!.evidence, /ERROR 25006 \(read_only_sql_transaction\) to a pool that needs a writer: words/)
  })

  it('25006 on a pool that accepts any role is the caller\'s business', () => {
    assert.equal(judgeLifecycle(said('ERROR', '25006', false)), null)
  })

  it('57P01, 57P02, 57P03 and class 08, as an error or a notice, on every pool: server-going-away', () => {
    for (const [severity, code, name] of [
      ['FATAL', '57P01', 'admin_shutdown'], ['WARNING', '57P01', 'admin_shutdown'], ['WARNING', '57P02', 'crash_shutdown'],
      ['FATAL', '57P03', 'cannot_connect_now'], ['FATAL', '08P01', 'connection_exception'], ['ERROR', '08006', 'connection_exception'],
    ]) {
      for (const needsWriter of [true, false]) {
        const v = judgeLifecycle(said(severity, code, needsWriter))
        assert.equal(v?.kind, 'server-going-away', `${severity} ${code}`)
        assert.equal(rechecks(v), true)
        assert.equal(v.evidence, `the server sent ${severity} ${code} (${name}): words`)
      }
    }
  })

  it('any other FATAL or PANIC: fatal-error, no re-read; other errors and notices: nothing', () => {
    assert.equal(judgeLifecycle(said('FATAL', '25P03'))?.kind, 'fatal-error')
    assert.equal(judgeLifecycle(said('PANIC', undefined))?.kind, 'fatal-error')
    assert.equal(rechecks(judgeLifecycle(said('FATAL', '25P03'))), false)
    for (const [severity, code] of [['ERROR', '23505'], ['ERROR', '57014'], ['NOTICE', '00000'], ['WARNING', '01000'], ['ERROR', undefined], ['ERROR', '57P04']]) {
      assert.equal(judgeLifecycle(said(severity!, code)), null, `${severity} ${code}`)
    }
  })
})

describe('lifecycle rules: connect deadline', () => {
  it('fires at the deadline, dated from the attempt\'s start', () => {
    assert.equal(judgeLifecycle({ kind: 'connect-deadline', since: 0, deadlineMs: 3000, at: 2999 }), null)
    const v = judgeLifecycle({ kind: 'connect-deadline', since: 0, deadlineMs: 3000, at: 3000 })
    assert.equal(v?.kind, 'connect-timeout')
    assert.equal(v.firstEvidenceAt, 0)
  })
})
