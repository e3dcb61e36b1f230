/**
 * A fleet (issue 21): N app instances in M zones in front of one primary and its standby, each instance
 * with its own path to the database, and a real Prometheus scraping them all — so a test can cut one zone
 * off from one host while the others still reach it, and see what the fleet's rules make of it. Root only
 * (network namespaces, veth links, iptables); a coded KitError otherwise.
 *
 * Everything lives in network namespaces this process made, on addresses of the benchmarking range
 * 198.18.0.0/15 that the kit itself put on their interfaces; nothing is routed anywhere else:
 *
 *   root ─ core (router; Prometheus) ─┬─ db (primary 198.18.2.1, standby 198.18.2.2, one port)
 *                                    ├─ zone 0 (router; its VIP 198.18.3.1) ─┬─ instance 0  198.18.64.2
 *                                    │                                       └─ instance 1  198.18.64.6
 *                                    ├─ zone 1 ─ ...
 *
 * - A zone is a router namespace: cutting a zone from a host is an iptables rule in that zone's namespace
 *   (FORWARD), so only that zone's path goes. Each instance is a namespace of its own behind its zone's
 *   router: loss on one instance's path is a rule in its namespace, on its own link.
 * - The servers run in the db namespace (fleet-db.ts). Connections reach them either by both addresses
 *   (`connect: 'hosts'`) or through the zone's virtual address (`connect: 'vip'`), rewritten by DNAT in the
 *   zone's namespace, as a load balancer or a Kubernetes Service does; `pointVip` moves one zone's VIP.
 * - The root namespace gets one veth link, with a /30 of 198.19.255.0/24 on it, to reach Prometheus's API.
 * - Names (namespaces, interfaces, rule comments) carry `pgg-<pid>-`; they are removed by `stop()`, at
 *   exit, and by the next start's sweep when a run was killed (netns.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ConfigError } from '../errors'
import type { ClusterOptions } from './cluster'
import { KitError, type KitErrorCode, KitErrorCodes } from './errors'
import { FLEET_TABLE } from './fleet-app'
import type { FleetDbInfo, FleetDbReply, FleetDbRequest, FleetDbServer } from './fleet-db'
import { kitTmpDir } from './kit-dir'
import { inNs, ip, iptables, NetnsLedger, netnsUnavailable, ruleTag, sweepStaleNetns, tagged } from './netns'
import { serverUser } from './os-user'
import { isAlive } from './process'
import { type PromAlert, PrometheusServer } from './prometheus'

export interface FleetOptions {
  /** Zone names (pg_pool_guard.client.zone, cloud.availability_zone). At most 16. @default ['a', 'b', 'c'] */
  zones?: string[]
  /** App instances per zone; at most 100 in all. @default 2 */
  instancesPerZone?: number
  /**
   * How instances reach the database: 'hosts' lists both servers (target_session_attrs=read-write); 'vip'
   * gives each zone one virtual address, DNAT'd in the zone's namespace to the primary. @default 'hosts'
   */
  connect?: 'hosts' | 'vip'
  /**
   * The app every instance runs (a Node script, run with `node` inside its namespace). It gets DATABASE_URL,
   * METRICS_HOST and METRICS_PORT (serve Prometheus metrics there: the instance's own address), PORT, OTEL_RESOURCE_ATTRIBUTES
   * (service.instance.id, cloud.availability_zone) and PGG_FLEET_INSTANCE. @default the kit's fleet app (fleet-app.ts)
   */
  app?: string
  /** Extra environment for every instance. */
  env?: Record<string, string>
  /** @default 9464 */
  metricsPort?: number
  /** Alert and recording rule files for Prometheus (evaluated every second, as it scrapes). @default none */
  ruleFiles?: string[]
  /** SQL run on the primary once, before the instances start (their tables). The kit's app table is always made. */
  setupSql?: string
  /** postgresql.conf settings for both servers. */
  settings?: ClusterOptions['settings']
  /** Instances must be scraped and reporting a host within this. @default 60000 */
  readyTimeoutMs?: number
}

export interface FleetInstance {
  /** `<zone>-<n>`: service.instance.id, and the Prometheus `instance` label. */
  readonly id: string
  readonly zone: string
  readonly namespace: string
  /** Its own address (the end of its link). */
  readonly address: string
  /** What Prometheus scrapes: address:metricsPort. */
  readonly target: string
  readonly pid: number | undefined
  /** The last lines it printed. */
  output(): string
}

export interface FleetZone {
  readonly name: string
  readonly namespace: string
  readonly instances: FleetInstance[]
}

export interface FleetFault {
  readonly description: string
  /** Removes the rules; safe to call twice. */
  remove(): Promise<void>
}

const SERVER_ADDRESSES = ['198.18.2.1', '198.18.2.2']
/** Servers and the VIP: what "the path to the database" matches in an instance's namespace. */
const DATABASE_RANGE = '198.18.2.0/23'
const FLEET_RANGE = '198.18.0.0/15'
const VIP = '198.18.3.1'
const PORT = 5432
const PROMETHEUS_PORT = 9090
const MAX_ZONES = 16
const MAX_INSTANCES = 100
const HBA = [
  'local all all trust',
  'local replication all trust',
  'host all all 127.0.0.0/8 scram-sha-256',
  `host all all ${FLEET_RANGE} scram-sha-256`,
  `host replication all ${FLEET_RANGE} scram-sha-256`,
  '',
].join('\n')

/** The package root (src/testing or dist/testing, two levels down): children run from there. */
const ROOT = join(__dirname, '..', '..')

/** Node arguments to run a kit script: under tsx (tests run the sources) a .ts file needs its loader. */
function nodeArgs(script: string): string[] {
  return script.endsWith('.ts') ? ['--import', 'tsx', script] : [script]
}

function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra }
  // A test runner's context would make a child node report to it.
  delete env.NODE_TEST_CONTEXT
  return env
}

class Instance implements FleetInstance {
  private tail = ''
  child: ChildProcess | undefined
  constructor(
    readonly id: string, readonly zone: string, readonly namespace: string, readonly address: string, readonly target: string,
    /** Its link's name on the zone router's side. */
    readonly link: string
  ) {}
  get pid(): number | undefined {
    return this.child?.pid
  }
  output(): string {
    return this.tail
  }
  keep(d: Buffer): void {
    this.tail = (this.tail + d.toString()).slice(-4096)
  }
  get exited(): boolean {
    return this.child !== undefined && (this.child.exitCode !== null || this.child.signalCode !== null)
  }
}

/** The db namespace's cluster, driven over IPC (fleet-db.ts). */
class DbProcess {
  private seq = 0
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  constructor(readonly child: ChildProcess) {
    child.on('message', (m: FleetDbReply) => {
      const w = this.waiting.get(m.id)
      if (!w) return
      this.waiting.delete(m.id)
      if (m.ok) w.resolve(m.result)
      else if (m.code?.startsWith('PGG_KIT_')) w.reject(new KitError(m.code as KitErrorCode, `fleet database: ${m.message.replace(/^pg-pool-guard\/testing: /, '')}`))
      // A server's own error (a SQLSTATE) or a bad argument: its code, as it was.
      else w.reject(Object.assign(new Error(m.message), { code: m.code }))
    })
    const fail = (why: string): void => {
      for (const w of this.waiting.values()) w.reject(new KitError(KitErrorCodes.SERVER_EXITED, `the fleet's database process ${why}`))
      this.waiting.clear()
    }
    child.once('exit', (code, sig) => fail(`exited (${code ?? sig})`))
    child.once('error', (err) => fail(`could not be started: ${err.message}`))
  }
  request<T>(req: FleetDbRequest extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never): Promise<T> {
    const id = ++this.seq
    if (!this.child.connected) return Promise.reject(new KitError(KitErrorCodes.SERVER_EXITED, "the fleet's database process is gone"))
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject })
      this.child.send({ ...req, id } as FleetDbRequest)
    })
  }
}

export class Fleet {
  readonly zones: FleetZone[] = []
  readonly instances: FleetInstance[] = []
  /** The virtual address each zone's VIP answers on (connect: 'vip'). */
  readonly vip = VIP
  readonly port = PORT
  servers: FleetDbServer[] = []
  user = ''
  password = ''
  database = ''
  prometheus!: PrometheusServer
  private readonly ledger = new NetnsLedger()
  private readonly dir: string
  private db: DbProcess | undefined
  private readonly vipTarget = new Map<string, { rule: string[]; reset: string[] | null }>()
  private readonly faults = new Set<FleetFault>()
  private stopped = false
  private readonly onExit = (): void => this.killSync()

  /** @internal use startFleet() */
  constructor(readonly options: FleetOptions) {
    this.dir = mkdtempSync(join(kitTmpDir(), `${tagged('fleet')}-`))
    // The postgres OS user reads the HBA file here.
    chmodSync(this.dir, 0o755)
    process.once('exit', this.onExit)
  }

  /** The server named 'a' or 'b', or the current primary. */
  server(name: string | 'primary'): FleetDbServer {
    const s = name === 'primary' ? this.servers.find((x) => x.role === 'primary') : this.servers.find((x) => x.name === name)
    if (!s) throw new KitError(KitErrorCodes.NO_PRIMARY, `the fleet has no server ${name} (servers: ${this.servers.map((x) => `${x.name} ${x.host} ${x.role}`).join(', ')})`)
    return s
  }

  /** The connection string instances get (password included: test-only, never printed by the kit). */
  connectionString(connect: 'hosts' | 'vip' = this.options.connect ?? 'hosts'): string {
    const hosts = connect === 'vip' ? `${VIP}:${PORT}` : this.servers.map((s) => `${s.host}:${s.port}`).join(',')
    return `postgresql://${encodeURIComponent(this.user)}:${encodeURIComponent(this.password)}@${hosts}/${encodeURIComponent(this.database)}?target_session_attrs=read-write`
  }

  /** SQL on a server over its Unix socket (`server` null: the primary). */
  query<R = Record<string, unknown>>(sql: string, params?: unknown[], server: string | null = null): Promise<R[]> {
    return this.dbProcess().request<R[]>({ op: 'query', server, sql, params })
  }

  /** Promotes a standby (pg_ctl promote); the old primary keeps running and writable. */
  async promote(server: string): Promise<void> {
    this.servers = (await this.dbProcess().request<FleetDbInfo>({ op: 'promote', server })).servers
  }

  /** Every standby has replayed what the primary wrote so far. */
  async caughtUp(): Promise<void> {
    await this.dbProcess().request({ op: 'caughtUp' })
  }

  /**
   * The path between zones and a server is cut: every packet to or from it dropped in each zone's namespace
   * (FORWARD), no FIN, no RST. Default: every zone — the host is gone for the whole fleet.
   */
  cut(server: string, options: { zones?: string[] } = {}): Promise<FleetFault> {
    const ipAddr = this.server(server).host
    const zones = this.zonesNamed(options.zones)
    const rules = zones.flatMap((z) => [
      { ns: z.namespace, rule: ['FORWARD', '-d', ipAddr, ...ruleTag(), '-j', 'DROP'] },
      { ns: z.namespace, rule: ['FORWARD', '-s', ipAddr, ...ruleTag(), '-j', 'DROP'] },
    ])
    return this.install(rules, `${ipAddr} cut from zone${zones.length > 1 ? 's' : ''} ${zones.map((z) => z.name).join(', ')}`)
  }

  /**
   * A fraction of one instance's packets to (and with 'both', from) the database dropped at random, on its
   * own link: where the link enters its zone's router (FORWARD, by interface), so they are lost on the
   * wire as far as the instance's TCP knows — a drop in its own OUTPUT chain would be reported to TCP as a
   * local error and never retransmitted. Its scrapes are left alone. @default direction 'to'
   */
  loss(instance: string, probability: number, options: { direction?: 'to' | 'both' } = {}): Promise<FleetFault> {
    if (!(probability > 0 && probability < 1)) throw new ConfigError(`loss probability must be in (0, 1), got ${probability}`)
    const inst = (this.instances as Instance[]).find((i) => i.id === instance)
    if (!inst) throw new ConfigError(`no fleet instance ${instance} (instances: ${this.instances.map((i) => i.id).join(', ')})`)
    const drop = ['-m', 'statistic', '--mode', 'random', '--probability', String(probability), ...ruleTag(), '-j', 'DROP']
    const router = this.zonesNamed([inst.zone])[0].namespace
    const rules = [{ ns: router, rule: ['FORWARD', '-i', inst.link, '-d', DATABASE_RANGE, ...drop] }]
    if (options.direction === 'both') rules.push({ ns: router, rule: ['FORWARD', '-o', inst.link, '-s', DATABASE_RANGE, ...drop] })
    return this.install(rules, `${Math.round(probability * 100)} % loss on ${instance}'s path to the database (${options.direction ?? 'to'})`)
  }

  /**
   * Points one zone's VIP at `server` for new connections. `pinned`: what happens to connections already
   * open through the VIP to another server — 'keep' (a load balancer's session table keeps them there),
   * or 'reset' (the address moved to another machine, which answers the old flows with RST).
   */
  async pointVip(zone: string, server: string, options: { pinned?: 'keep' | 'reset' } = {}): Promise<void> {
    const z = this.zonesNamed([zone])[0]
    const to = this.server(server).host
    const old = this.vipTarget.get(z.name)
    const rule = ['PREROUTING', '-d', VIP, '-p', 'tcp', '--dport', String(PORT), ...ruleTag(), '-j', 'DNAT', '--to-destination', `${to}:${PORT}`]
    await iptables(z.namespace, ['-t', 'nat', '-I', ...rule])
    if (old) {
      await iptables(z.namespace, ['-t', 'nat', '-D', ...old.rule])
      if (old.reset) await iptables(z.namespace, ['-D', ...old.reset])
    }
    let reset: string[] | null = null
    if (options.pinned === 'reset') {
      // Only flows that went to the VIP and are answered by another server (both directions: their reply
      // source is the server they were pinned to); new flows to `to` and the zone's direct paths pass.
      reset = ['FORWARD', '-p', 'tcp', '-m', 'conntrack', '--ctorigdst', VIP, '!', '--ctreplsrc', to, '--ctstate', 'ESTABLISHED', ...ruleTag(), '-j', 'REJECT', '--reject-with', 'tcp-reset']
      await iptables(z.namespace, ['-I', ...reset])
    }
    this.vipTarget.set(z.name, { rule, reset })
  }

  /** Alerts pending or firing in the fleet's Prometheus, optionally only these names. */
  async alerts(names?: string[]): Promise<PromAlert[]> {
    const all = await this.prometheus.alerts()
    return names ? all.filter((a) => names.includes(a.labels.alertname)) : all
  }

  /** Stops instances, Prometheus and servers, and removes namespaces, links and rules. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    process.off('exit', this.onExit)
    await Promise.all((this.instances as Instance[]).map(async (i) => {
      const c = i.child
      if (!c || i.exited) return
      const exited = once(c, 'exit')
      c.kill('SIGTERM')
      const t = setTimeout(() => c.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(t)
    }))
    await this.prometheus?.stop().catch(() => {})
    if (this.db && this.db.child.exitCode === null) {
      const exited = once(this.db.child, 'exit')
      await Promise.race([this.db.request({ op: 'stop' }).catch(() => {}), new Promise((r) => setTimeout(r, 20_000))])
      this.db.child.disconnect()
      const t = setTimeout(() => this.db?.child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(t)
    }
    this.ledger.removeSync()
    rmSync(this.dir, { recursive: true, force: true })
  }

  /** @internal */
  async build(): Promise<void> {
    const o = this.options
    const zoneNames = o.zones ?? ['a', 'b', 'c']
    const perZone = o.instancesPerZone ?? 2
    const metricsPort = o.metricsPort ?? 9464
    const tag = ruleTag()
    // Namespaces: the core router, the servers', one router per zone, one per instance.
    const core = await this.ledger.addNamespace('c')
    const db = await this.ledger.addNamespace('d')
    await this.forward(core)

    // The one link into the root namespace: a free /30 of 198.19.255.0/24, for Prometheus's API.
    const used = await ip(['-4', '-o', 'addr', 'show'])
    let k = 0
    while (k < 64 && used.includes(` 198.19.255.${4 * k + 1}/`)) k++
    if (k === 64) throw new KitError(KitErrorCodes.NETNS_FAILED, 'no free /30 left in 198.19.255.0/24 for the root link (64 fleets running?)')
    const rootAddr = `198.19.255.${4 * k + 1}`
    const promAddr = `198.19.255.${4 * k + 2}`
    await this.ledger.veth(undefined, tagged('c'), core, tagged('r'))
    await ip(['addr', 'add', `${rootAddr}/30`, 'dev', tagged('c')])
    await ip(['addr', 'add', `${promAddr}/30`, 'dev', tagged('r')], core)

    // core <-> db; both servers' addresses on the db namespace's loopback.
    await this.ledger.veth(core, tagged('d'), db, tagged('c'))
    await ip(['addr', 'add', '198.18.1.1/30', 'dev', tagged('d')], core)
    await ip(['addr', 'add', '198.18.1.2/30', 'dev', tagged('c')], db)
    for (const a of SERVER_ADDRESSES) await ip(['addr', 'add', `${a}/32`, 'dev', 'lo'], db)
    await ip(['route', 'add', FLEET_RANGE, 'via', '198.18.1.1'], db)
    await ip(['route', 'add', '198.18.2.0/24', 'via', '198.18.1.2'], core)
    // A walreceiver connecting to the other server over loopback would come from that server's own
    // address; give it its own (as on two machines), so a primary's pg_stat_replication names its standby.
    const pgUser = serverUser()
    if (pgUser) {
      for (const [to, from] of [[SERVER_ADDRESSES[0], SERVER_ADDRESSES[1]], [SERVER_ADDRESSES[1], SERVER_ADDRESSES[0]]]) {
        await iptables(db, ['-t', 'nat', '-A', 'POSTROUTING', '-p', 'tcp', '-d', to, '--dport', String(PORT), '-m', 'owner', '--uid-owner', String(pgUser.uid), ...tag, '-j', 'SNAT', '--to-source', from])
      }
    }

    for (const [zi, name] of zoneNames.entries()) {
      const zns = await this.ledger.addNamespace(`z${zi}`)
      await this.forward(zns)
      await this.ledger.veth(core, tagged(`z${zi}`), zns, tagged('c'))
      await ip(['addr', 'add', `198.18.${16 + zi}.1/30`, 'dev', tagged(`z${zi}`)], core)
      await ip(['addr', 'add', `198.18.${16 + zi}.2/30`, 'dev', tagged('c')], zns)
      await ip(['route', 'add', FLEET_RANGE, 'via', `198.18.${16 + zi}.1`], zns)
      await ip(['route', 'add', `198.18.${64 + zi}.0/24`, 'via', `198.18.${16 + zi}.2`], core)
      // The zone's VIP is an address of its router; DNAT sends its connections to a server.
      await ip(['addr', 'add', `${VIP}/32`, 'dev', 'lo'], zns)
      const zone: FleetZone = { name, namespace: zns, instances: [] }
      this.zones.push(zone)
      for (let j = 0; j < perZone; j++) {
        const n = this.instances.length
        const ins = await this.ledger.addNamespace(`i${n}`)
        await this.ledger.veth(zns, tagged(`i${n}`), ins, tagged(`z${zi}`))
        await ip(['addr', 'add', `198.18.${64 + zi}.${4 * j + 1}/30`, 'dev', tagged(`i${n}`)], zns)
        const address = `198.18.${64 + zi}.${4 * j + 2}`
        await ip(['addr', 'add', `${address}/30`, 'dev', tagged(`z${zi}`)], ins)
        await ip(['route', 'add', FLEET_RANGE, 'via', `198.18.${64 + zi}.${4 * j + 1}`], ins)
        const inst = new Instance(`${name}-${j}`, name, ins, address, `${address}:${metricsPort}`, tagged(`i${n}`))
        zone.instances.push(inst)
        this.instances.push(inst)
      }
    }

    // The servers, inside the db namespace.
    const hbaFile = join(this.dir, 'pg_hba.conf')
    writeFileSync(hbaFile, HBA, { mode: 0o644 })
    const script = join(__dirname, `fleet-db${__filename.endsWith('.ts') ? '.ts' : '.js'}`)
    const child = spawn('ip', ['netns', 'exec', db, process.execPath, ...nodeArgs(script)], {
      cwd: ROOT, env: childEnv({ PGG_FLEET_DB: '1' }), stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    this.db = new DbProcess(child)
    const info = await this.db.request<FleetDbInfo>({
      op: 'start',
      options: { standby: true, primaryHost: SERVER_ADDRESSES[0], standbyHost: SERVER_ADDRESSES[1], port: PORT, settings: { ...o.settings, hba_file: hbaFile } },
    })
    Object.assign(this, { servers: info.servers, user: info.user, password: info.password, database: info.database })
    for (const z of this.zones) await this.pointVip(z.name, 'a')
    await this.query(`CREATE TABLE IF NOT EXISTS ${FLEET_TABLE} (id bigserial PRIMARY KEY, instance text NOT NULL, writer int NOT NULL, at timestamptz NOT NULL DEFAULT now())`)
    if (o.setupSql) await this.query(o.setupSql)

    // Prometheus in the core namespace: it reaches every instance, and the root namespace reaches it.
    const promDir = join(this.dir, 'prometheus')
    mkdirSync(promDir)
    this.prometheus = await PrometheusServer.start({
      listen: `${promAddr}:${PROMETHEUS_PORT}`, dir: promDir, netns: core, ruleFiles: o.ruleFiles ?? [],
      jobs: [{ name: 'fleet', targets: this.instances.map((i) => ({ address: i.target, labels: { instance: i.id } })) }],
    })

    const app = o.app ?? join(__dirname, `fleet-app${__filename.endsWith('.ts') ? '.ts' : '.js'}`)
    for (const inst of this.instances as Instance[]) {
      const child = spawn('ip', ['netns', 'exec', inst.namespace, process.execPath, ...nodeArgs(app)], {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: childEnv({
          ...o.env,
          DATABASE_URL: this.connectionString(),
          METRICS_HOST: inst.address,
          METRICS_PORT: String(metricsPort),
          PORT: '3000',
          OTEL_RESOURCE_ATTRIBUTES: `service.instance.id=${encodeURIComponent(inst.id)},cloud.availability_zone=${encodeURIComponent(inst.zone)}`,
          PGG_FLEET_INSTANCE: inst.id,
        }),
      })
      inst.child = child
      child.stdout!.on('data', (d: Buffer) => inst.keep(d))
      child.stderr!.on('data', (d: Buffer) => inst.keep(d))
      child.once('error', (err) => inst.keep(Buffer.from(`spawn failed: ${err.message}\n`)))
    }
    await this.ready(o.readyTimeoutMs ?? 60_000)
  }

  /** Every instance scraped (up == 1) and reporting at least one host's status, or a coded error saying which is not. */
  private async ready(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs
    const all = this.instances as Instance[]
    for (;;) {
      const dead = all.find((i) => i.exited || (i.child === undefined))
      if (dead) throw new KitError(KitErrorCodes.INSTANCE_EXITED, `fleet instance ${dead.id} exited before it was ready:\n${dead.output().slice(-1500)}`)
      // Prometheus has no event to wait on: its API is polled.
      const up = new Set((await this.prometheus.query('up{job="fleet"} == 1')).map((s) => s.metric.instance))
      const reporting = new Set((await this.prometheus.query('count by (instance) (pg_pool_guard_host_status{job="fleet"})')).map((s) => s.metric.instance))
      const missing = all.filter((i) => !up.has(i.id) || !reporting.has(i.id))
      if (missing.length === 0) return
      if (Date.now() > deadline) {
        throw new KitError(KitErrorCodes.FLEET_NOT_READY, `fleet instances not scraped and reporting within ${timeoutMs} ms: ${missing.map((i) => `${i.id} (${up.has(i.id) ? 'scraped, no host reported' : 'not scraped'}; last output: ${i.output().slice(-300).trim() || 'none'})`).join('; ')}`)
      }
      await new Promise((r) => setTimeout(r, 250))
    }
  }

  private async forward(ns: string): Promise<void> {
    await inNs(ns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1'])
  }

  private zonesNamed(names: string[] | undefined): FleetZone[] {
    if (names === undefined) return this.zones
    return names.map((n) => {
      const z = this.zones.find((x) => x.name === n)
      if (!z) throw new ConfigError(`no fleet zone ${n} (zones: ${this.zones.map((x) => x.name).join(', ')})`)
      return z
    })
  }

  private async install(rules: { ns: string; rule: string[] }[], description: string): Promise<FleetFault> {
    const done: { ns: string; rule: string[] }[] = []
    let removed = false
    const fault: FleetFault = {
      description,
      remove: async () => {
        if (removed) return
        removed = true
        this.faults.delete(fault)
        for (const r of done) await iptables(r.ns, ['-D', ...r.rule]).catch(() => {})
      },
    }
    this.faults.add(fault)
    try {
      for (const r of rules) {
        await iptables(r.ns, ['-I', ...r.rule])
        done.push(r)
      }
    } catch (err) {
      await fault.remove()
      throw err
    }
    return fault
  }

  private dbProcess(): DbProcess {
    if (!this.db) throw new KitError(KitErrorCodes.NO_PRIMARY, 'the fleet has no database process (not started, or stopped)')
    return this.db
  }

  /** At exit (no time for async work): children killed, the db process told to stop its servers, names removed. */
  private killSync(): void {
    for (const i of this.instances as Instance[]) if (i.child && !i.exited) i.child.kill('SIGKILL')
    // SIGTERM: it stops its servers (immediate shutdown) on its own, after we are gone.
    if (this.db && this.db.child.exitCode === null) this.db.child.kill('SIGTERM')
    this.ledger.removeSync()
    rmSync(this.dir, { recursive: true, force: true })
  }
}

/** Why a fleet cannot be started here, or null. */
export function fleetUnavailable(): string | null {
  return netnsUnavailable()
}

let swept = false

/**
 * Removes what killed runs left: namespaces and links of dead processes (with what still runs inside),
 * and their working directories. Runs once per process, on the first startFleet(). Returns how many.
 */
export function sweepStaleFleets(): number {
  let removed = sweepStaleNetns()
  const parent = kitTmpDir()
  let names: string[] = []
  try {
    names = readdirSync(parent)
  } catch {
    // nothing of ours
  }
  for (const n of names) {
    const m = /^pgg-(\d+)-fleet-/.exec(n)
    if (!m || isAlive(Number(m[1]))) continue
    rmSync(join(parent, n), { recursive: true, force: true })
    removed++
  }
  return removed
}

/** Builds a fleet and waits until Prometheus scrapes every instance. Root only: a KitError otherwise. */
export async function startFleet(options: FleetOptions = {}): Promise<Fleet> {
  const zones = options.zones ?? ['a', 'b', 'c']
  const per = options.instancesPerZone ?? 2
  if (zones.length < 1 || zones.length > MAX_ZONES || new Set(zones).size !== zones.length || zones.some((z) => typeof z !== 'string' || z === '')) {
    throw new ConfigError(`fleet zones must be 1 to ${MAX_ZONES} distinct non-empty names, got ${JSON.stringify(zones)}`)
  }
  if (!Number.isInteger(per) || per < 1 || zones.length * per > MAX_INSTANCES || per > 63) {
    throw new ConfigError(`instancesPerZone must be an integer from 1 to 63, at most ${MAX_INSTANCES} instances in all; got ${per}`)
  }
  const why = fleetUnavailable()
  if (why) throw new KitError(KitErrorCodes.NETNS_UNAVAILABLE, `cannot build a fleet: ${why}`)
  if (!swept) {
    swept = true
    sweepStaleFleets()
  }
  const fleet = new Fleet(options)
  try {
    await fleet.build()
  } catch (err) {
    await fleet.stop().catch(() => {})
    throw err
  }
  return fleet
}
