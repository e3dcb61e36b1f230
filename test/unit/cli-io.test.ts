/**
 * The built CLI (dist/cli/main.js) as a user runs it, without PostgreSQL: what it prints through a pipe,
 * the input files it refuses, its error codes, and that no secret of its input reaches any output.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs'
import { createServer, connect, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import type { ScanResult } from '../../src/cli/scan'

const root = join(__dirname, '..', '..')
const main = join(root, 'dist', 'cli', 'main.js')
const dir = mkdtempSync(join(tmpdir(), 'pgg-cli-io-'))
const cli = (args: string[], env: Record<string, string> = {}) => {
  const res = spawnSync(process.execPath, [main, ...args], { cwd: root, encoding: 'utf8', timeout: 20_000, env: { ...process.env, ...env } })
  assert.equal(res.error, undefined, `pg-pool-guard ${args.join(' ')} did not finish: ${res.error?.message}`)
  return res
}
/** Every line the CLI printed as an error ends with a stable code in brackets. */
const errorCodes = (stderr: string): string[] => stderr.split('\n').filter((l) => l.startsWith('pg-pool-guard:')).map((l) => /\[(PGG_[A-Z_]+)\]$/.exec(l)?.[1] ?? `no code: ${l}`)

describe('output through a pipe', () => {
  const servers: Server[] = []
  const sockets: Socket[] = []
  after(() => {
    for (const s of sockets) s.destroy()
    for (const s of servers) s.close()
  })

  it('scan --json with 300 connections: more than 64 KiB, whole and valid JSON through `| cat`', async () => {
    // Any TCP server will do: scan reads the kernel's table for the port, PostgreSQL or not.
    const server = createServer((s) => sockets.push(s))
    servers.push(server)
    await new Promise<void>((r) => server.listen({ host: '127.0.5.20', port: 0, backlog: 1024 }, r))
    const port = (server.address() as { port: number }).port
    await Promise.all(Array.from({ length: 300 }, () => new Promise<void>((resolve, reject) => {
      const s = connect({ host: '127.0.5.20', port }, () => resolve())
      s.on('error', reject)
      sockets.push(s)
    })))
    const res = spawnSync('sh', ['-c', `"${process.execPath}" "${main}" scan --json --port ${port} | cat`], { cwd: root, encoding: 'utf8', timeout: 30_000, maxBuffer: 64 * 1024 * 1024 })
    const bytes = Buffer.byteLength(res.stdout)
    assert.ok(bytes > 64 * 1024, `${bytes} bytes`)
    assert.notEqual(bytes, 65_536, 'cut at the pipe buffer size')
    const out = JSON.parse(res.stdout) as ScanResult
    assert.equal(out.rows.filter((r) => r.remote.endsWith(`:${port}`)).length, 300)
    console.log(`# scan --json | cat: ${bytes} bytes, ${out.rows.length} rows, valid JSON`)
  })
})

describe('input files', () => {
  const fifo = join(dir, 'fifo')
  spawnSync('mkfifo', [fifo])
  const big = join(dir, 'big.json')
  writeFileSync(big, JSON.stringify({ host: 'a', pad: 'x'.repeat(1024 * 1024) }))
  const sub = join(dir, 'a-directory')
  mkdirSync(sub)

  for (const [name, path, code] of [
    ['a FIFO (nobody writes: reading it would hang)', fifo, 'PGG_CLI_INPUT_NOT_A_FILE'],
    ['a directory', sub, 'PGG_CLI_INPUT_NOT_A_FILE'],
    ['a device', '/dev/zero', 'PGG_CLI_INPUT_NOT_A_FILE'],
    ['a file over 1 MiB', big, 'PGG_CLI_INPUT_TOO_LARGE'],
  ] as const) {
    it(`doctor and scan --regions refuse ${name}: exit 2 and ${code}, at once`, () => {
      for (const args of [['doctor', path], ['scan', '--regions', path, '--port', '1']]) {
        const started = Date.now()
        const res = cli(args)
        assert.equal(res.status, 2, `${args.join(' ')}: ${res.stderr}`)
        assert.deepEqual(errorCodes(res.stderr), [code], res.stderr)
        assert.ok(Date.now() - started < 10_000)
        assert.equal(res.stdout, '')
      }
    })
  }

  it('a --regions file that is not JSON, or not a regions map: exit 2, line and column, no text quoted', () => {
    const bad = join(dir, 'regions-bad.json')
    writeFileSync(bad, '{"eu": ["10.0.0.0/8"],\n "us": [10.1.0.0/16]}')
    const res = cli(['scan', '--regions', bad])
    assert.equal(res.status, 2)
    assert.deepEqual(errorCodes(res.stderr), ['PGG_CLI_INPUT_INVALID_JSON'])
    assert.match(res.stderr, /regions-bad\.json is not valid JSON at line 2, column 13/)
    assert.ok(!res.stderr.includes('10.1.0.0'), res.stderr)
    const cidr = join(dir, 'regions-cidr.json')
    writeFileSync(cidr, JSON.stringify({ eu: ['10.0.0.0/99'] }))
    const res2 = cli(['scan', '--regions', cidr])
    assert.equal(res2.status, 2)
    assert.deepEqual(errorCodes(res2.stderr), ['PGG_CONFIG_INVALID'])
  })
})

describe('error codes', () => {
  it('usage errors: exit 2 and PGG_CLI_USAGE', () => {
    for (const args of [['frobnicate'], ['scan', '--port', 'x'], ['scan', '--bogus'], ['scan', '--regions'], ['doctor'], ['demo', '--mode', 'warp']]) {
      const res = cli(args)
      assert.equal(res.status, 2, args.join(' '))
      assert.deepEqual(errorCodes(res.stderr), ['PGG_CLI_USAGE'], `${args.join(' ')}: ${res.stderr}`)
    }
  })
  it('doctor on something that is neither a URL nor a file: exit 2, PGG_CLI_INPUT_UNREADABLE, the argument not echoed', () => {
    const res = cli(['doctor', 'host=db user=app password=Hunter2-libpq'])
    assert.equal(res.status, 2)
    assert.deepEqual(errorCodes(res.stderr), ['PGG_CLI_INPUT_UNREADABLE'])
    assert.ok(!res.stderr.includes('Hunter2'), res.stderr)
  })
})

describe('no secret in any output', () => {
  const secrets = ['Pw-json-0001', 'KEY-MATERIAL-0002', 'Phr4se-0003', 'Env-pw-0004', 'Url-pw-0005', 'Ssl-pw-0006', 'Query-pw-0007', 'Tok-0008', 'Given-env-0009']
  const check = (what: string, res: { stdout: string; stderr: string }): void => {
    for (const s of secrets) assert.ok(!(res.stdout + res.stderr).includes(s), `${what} printed ${s}:\n${res.stdout}${res.stderr}`)
  }

  it('doctor with a JSON config holding a password, ssl.key, ssl.passphrase, PGPASSWORD, a URL with sslpassword', () => {
    const file = join(dir, 'secret.json')
    writeFileSync(file, JSON.stringify({
      host: '10.0.0.1', password: secrets[0],
      ssl: { key: `-----BEGIN PRIVATE KEY-----\n${secrets[1]}\n-----END PRIVATE KEY-----`, passphrase: secrets[2], cert: 'PUBLIC' },
      env: { PGPASSWORD: secrets[3] }, apiToken: secrets[7],
      connectionString: `postgresql://app:${secrets[4]}@10.0.0.1,10.0.0.2/shop?sslpassword=${secrets[5]}&password=${secrets[6]}`,
    }, null, 2))
    for (const args of [['doctor', file], ['doctor', file, '--json']]) {
      const res = cli(args, { PGPASSWORD: secrets[8] })
      assert.equal(res.status, 1, res.stderr)
      assert.match(res.stdout, /NO_KEEPALIVE/)
      check(args.join(' '), res)
    }
  })
  it('doctor with URLs: userinfo (also holding @ and /), ?password=, ?sslpassword=, a broken host list', () => {
    for (const url of [
      `postgresql://app:${secrets[4]}@db.internal:5432/shop?sslpassword=${secrets[5]}&password=${secrets[6]}`,
      `postgresql://app:x@${secrets[4]}/y@db-a,db-b/shop`,
      `postgresql://app:${secrets[4]}@db-a:port,db-b/shop`,
    ]) {
      for (const args of [['doctor', url], ['doctor', url, '--json']]) check(args.join(' '), cli(args))
    }
  })
  it('doctor with a JSON config that is not valid JSON', () => {
    const file = join(dir, 'secret-bad.json')
    writeFileSync(file, `{"host": "a", "password": ${secrets[0]}, "ssl": {"key": "${secrets[1]}"}}`)
    const res = cli(['doctor', file])
    assert.equal(res.status, 2)
    assert.deepEqual(errorCodes(res.stderr), ['PGG_CLI_INPUT_INVALID_JSON'])
    check('doctor (bad JSON)', res)
  })
})
