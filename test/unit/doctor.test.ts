import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { diagnose, redact } from '../../src/cli/doctor'

const codes = (c: Record<string, unknown>): string[] => diagnose(c).map((f) => `${f.severity}:${f.code}`)

describe('doctor', () => {
  it('pg defaults: every risk named', () => {
    assert.deepEqual(codes({ host: '10.0.0.5' }), ['risky:NO_KEEPALIVE', 'risky:NO_CONNECTION_TIMEOUT', 'risky:NO_QUERY_TIMEOUT', 'risky:SINGLE_HOST', 'advice:UNGUARDED'])
  })
  it('keepAlive with pg\'s default delay of 0 is the 2 h 11 min trap', () => {
    const f = diagnose({ host: '10.0.0.5', keepAlive: true }).find((x) => x.code === 'KEEPALIVE_DELAY_ZERO')!
    assert.equal(f.severity, 'risky')
    assert.match(f.why, /7200 s, a dead socket found after 2 h 11 min/)
    assert.ok(!codes({ host: 'x', keepAlive: true, keepAliveInitialDelayMillis: 5000 }).includes('risky:KEEPALIVE_DELAY_ZERO'))
  })
  it('several hosts without target_session_attrs; a DNS name without maxLifetimeSeconds', () => {
    assert.ok(codes({ host: 'a,b', guard: {} }).includes('risky:NO_TARGET_SESSION_ATTRS'))
    assert.ok(!codes({ host: 'a,b', guard: { targetSessionAttrs: 'read-write' } }).includes('risky:NO_TARGET_SESSION_ATTRS'))
    assert.ok(codes({ host: 'db.example.com', guard: {} }).includes('advice:NO_MAX_LIFETIME'))
  })
  it('libpq parameters in a URL count: connect_timeout, keepalives, target_session_attrs, options', () => {
    const url = 'postgresql://u:p@10.0.0.1:5432,10.0.0.2:5432/d?target_session_attrs=read-write&connect_timeout=5&keepalives=1&keepalives_idle=5&options=-c%20statement_timeout%3D30000'
    const q = Object.fromEntries([...new URLSearchParams(url.split('?')[1])].map(([k, v]) => [`url:${k}`, v]))
    assert.deepEqual(codes({ connectionString: url, ...q }), ['advice:UNGUARDED'])
  })
  it('a guarded, multi-host pool with a connect timeout has nothing risky', () => {
    assert.deepEqual(codes({ host: '10.0.0.1,10.0.0.2', connectionTimeoutMillis: 5000, guard: { targetSessionAttrs: 'read-write' } }), [])
  })
  it('redacts passwords in URLs, JSON and query parameters', () => {
    assert.equal(redact('postgresql://app:s3cr%40t@h/db'), 'postgresql://app:***@h/db')
    assert.equal(redact('{"user":"a","password":"p\\"w"}'), '{"user":"a","password":"***"}')
    assert.equal(redact('postgres://h/db?password=x&sslmode=require'), 'postgres://h/db?password=***&sslmode=require')
  })
})
