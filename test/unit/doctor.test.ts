import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { diagnose, formatReport, loadConfig, redact } from '../../src/cli/doctor'
import { CliErrorCodes } from '../../src/cli/errors'
import { collectSecrets, scrub, stripUrlPassword } from '../../src/cli/secrets'

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
  it('redacts sslpassword and every secret-named query parameter, and the secret keys of JSON (ssl.key, passphrase, PGPASSWORD)', () => {
    assert.equal(redact('postgres://u@h/db?sslmode=verify-full&sslpassword=Kp4ss&sslkey=/k.pem'), 'postgres://u@h/db?sslmode=verify-full&sslpassword=***&sslkey=***')
    assert.equal(redact('postgresql://u:p@ss/w@h/db'), 'postgresql://u:***@h/db', 'a password holding @ and / is redacted whole')
    const json = JSON.stringify({ ssl: { key: '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----', passphrase: 'Phr4se', cert: 'PUBLIC-CERT' }, env: { PGPASSWORD: 'Env-pw' }, apiToken: 12345, user: 'app' })
    assert.equal(redact(json), JSON.stringify({ ssl: { key: '***', passphrase: '***', cert: 'PUBLIC-CERT' }, env: { PGPASSWORD: '***' }, apiToken: '***', user: 'app' }))
  })
  it('collects every secret value of a config, nested and inside URLs, so output can be scrubbed of them', () => {
    const secrets = collectSecrets({ password: 'P1', ssl: { key: 'K1', passphrase: 'F1', cert: 'C1' }, auth: { user: 'x', secret: 'S1' }, connectionString: 'postgresql://u:U%401@h/d?sslpassword=Q1' })
    assert.deepEqual(secrets.sort(), ['F1', 'K1', 'P1', 'Q1', 'Q1', 'S1', 'U%401', 'U@1', 'x'])
    assert.equal(stripUrlPassword('postgresql://u:p@ss/w@h1,h2/db?x=1'), 'postgresql://u@h1,h2/db?x=1')
    assert.equal(scrub('a postgresql://u:pw@h line'), 'a postgresql://u:***@h line')
  })
  it('the report names what was checked, never the config itself', () => {
    const file = join(tmpdir(), `pgg-doctor-unit-${process.pid}.json`)
    writeFileSync(file, JSON.stringify({ host: '10.0.0.5', password: 'Hunter2-x', ssl: { key: 'KEY-MATERIAL-123', passphrase: 'Phr4se-x' }, PGPASSWORD: 'Env-pw-x' }))
    const { config, input } = loadConfig(file)
    assert.equal(input, file)
    const text = formatReport({ input, findings: diagnose(config) })
    for (const s of ['Hunter2-x', 'KEY-MATERIAL-123', 'Phr4se-x', 'Env-pw-x']) assert.ok(!text.includes(s), `${s} in ${text}`)
    assert.equal(loadConfig('postgresql://u:Pw-x@h/db?sslpassword=Sp-x').input, 'a connection string')
  })
  it('a JSON syntax error names the file, line and column, never the text', () => {
    const file = join(tmpdir(), `pgg-doctor-bad-${process.pid}.json`)
    writeFileSync(file, '{"host": "a",\n  "password": Hunter2-bad }')
    assert.throws(() => loadConfig(file), (err: Error & { code?: string }) => {
      assert.equal(err.code, CliErrorCodes.INPUT_INVALID_JSON)
      assert.ok(!err.message.includes('Hunter2'), err.message)
      assert.ok(!err.message.includes('"host"'), err.message)
      assert.match(err.message, new RegExp(`${file} is not valid JSON at line 2, column 15`))
      return true
    })
  })
})
