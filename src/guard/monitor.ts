/**
 * The tick loop: sample every pooled socket (TCP_INFO through the FFI, or /proc rows without it), run the
 * pure classifier, hand verdicts to the evictor, launch the probes it asks for, and now and then cross-check
 * the kernel's socket table for the whole process. Its timer is unref'd and stops with the pool.
 */
import type { Pool as PgPool } from 'pg'
import { normalizeAddress, type TcpRow } from '../kernel/proc-net-tcp'
import { readTcpTable, socketInodesOf } from '../kernel/reader'
import type { ResolvedGuardOptions } from '../options'
import { fdOf, hasQueryInFlight } from '../pool/pg-adapter'
import { loadSockopt } from '../socket/ffi'
import { TcpState } from '../socket/tcp-info'
import { type ClassifyOutput, classify, type HostSummary, type ProbeResult, type SocketInput, type SocketMemory, type Verdict } from './classifier'
import { probe } from './probe'
import { type ConnRecord, type Registry, socketInode } from './registry'
import { sampleFromRow, sampleTcpInfo } from './sample'

export interface PassReport {
  durationMs: number
  sockets: number
  /** TCP retransmissions and newly unanswered keepalive probes seen since the previous pass. */
  retransmits: number
  probes: number
  /** Whether this pass read /proc/net/tcp (the slow cross-check). */
  procScan: boolean
  procScanMs: number
}

/** A socket this process holds to a database port that no guarded pool knows: a second pool, a leaked client. */
export type ForeignSocket = Pick<TcpRow, 'localAddress' | 'localPort' | 'remoteAddress' | 'remotePort' | 'state' | 'txQueue' | 'retransmits' | 'probes' | 'inode'>

export interface MonitorDeps {
  pool: PgPool
  /** The options probes connect with (see Guard: a multi-host URL reduced to one host). */
  poolOptions: object
  registry: Registry
  options: ResolvedGuardOptions
  evict(rec: ConnRecord, verdict: Verdict): void
  onProbe(result: ProbeResult): void
  onPass(report: PassReport, out: ClassifyOutput | undefined): void
}

/**
 * Pass interval while no query is in flight and nothing is suspect. A keepalive probe seen out (even one)
 * switches back to the full cadence, so an idle zombie is still judged ~1.25 s after its first probe.
 */
const IDLE_EVERY_MS = 1000

/** Every live monitor in the process, so the process-wide view can tell known sockets from foreign ones. */
const live = new Set<Monitor>()

export class Monitor {
  private memory = new Map<number, SocketMemory>()
  private readonly probes = new Map<string, ProbeResult>()
  private readonly probing = new Set<string>()
  private readonly lastProbeAt = new Map<string, number>()
  private procRows: Map<number, TcpRow> | null = null
  /** The same rows by 4-tuple, for sockets whose inode could not be read. */
  private procRowsByTuple: Map<string, TcpRow> | null = null
  /** The first cross-check waits a full interval (TCP_INFO covers the pool meanwhile). */
  private lastProcScanAt = Date.now()
  private lastProcScanCostMs = 0
  private suspicion = false
  private unusual = false
  private lastIdlePassAt = -Infinity
  private timer: NodeJS.Timeout | undefined
  private stopped = false
  /** TCP_INFO is available: the per-tick detector. Otherwise /proc rows are. */
  readonly useTcpInfo = loadSockopt().ok
  hosts: HostSummary[] = []
  foreign: ForeignSocket[] = []

  constructor(private readonly deps: MonitorDeps) {}

  start(): void {
    if (this.deps.options.checkIntervalMs === 0) return
    live.add(this)
    this.timer = setInterval(() => this.tick(), this.deps.options.checkIntervalMs)
    this.timer.unref()
  }

  stop(): void {
    this.stopped = true
    live.delete(this)
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
  }

  /** Ports this monitor's pool talks to, for the process-wide view. */
  ports(): Set<number> {
    return new Set(this.deps.registry.records().map((r) => r.remotePort ?? r.configuredPort))
  }

  /** One pass; `procScan: true` forces the /proc cross-check regardless of cadence and budget. */
  tick(now = Date.now(), { procScan = false }: { procScan?: boolean } = {}): void {
    if (this.stopped) return
    const started = performance.now()
    const o = this.deps.options
    const recs = this.deps.registry.records().filter((r) => (r.state === 'idle' || r.state === 'in-use') && r.socket)
    if (recs.length === 0) {
      this.memory.clear()
      return
    }
    const flying = new Set(recs.filter((r) => hasQueryInFlight(r.client)))
    const inFlight = flying.size > 0
    // A pool at rest needs no quarter-second watch: its sockets can only show keepalive trouble, which
    // takes seconds to build up. Look every IDLE_EVERY_MS then, and at full cadence once queries run.
    if (!inFlight && !this.unusual && !procScan && now - this.lastIdlePassAt < Math.max(IDLE_EVERY_MS, o.checkIntervalMs)) return
    this.lastIdlePassAt = inFlight ? -Infinity : now
    // Reading /proc/net/tcp costs tens of ms on a busy host: never spend more than 0.03 % of a core on it.
    const sinceScan = now - this.lastProcScanAt
    const budgetOk = sinceScan >= this.lastProcScanCostMs * 3000
    const procDue = procScan || (budgetOk && (this.useTcpInfo
      ? (o.procScanIntervalMs > 0 && sinceScan >= o.procScanIntervalMs) || (this.suspicion && sinceScan >= 1000)
      : sinceScan >= (inFlight || this.suspicion ? Math.min(1000, o.procScanIntervalMs || 1000) : o.procScanIntervalMs || 1000)))
    let procScanMs = 0
    if (procDue) {
      const t = performance.now()
      this.scanProc(now, recs)
      procScanMs = performance.now() - t
      this.lastProcScanCostMs = procScanMs
    }

    const byId = new Map<number, ConnRecord>()
    let retransmits = 0
    let probes = 0
    const inputs: SocketInput[] = recs.map((rec) => {
      byId.set(rec.id, rec)
      const input = this.observe(rec, procDue, flying.has(rec))
      const before = rec.kernel
      const after = input.sample
      if (before && after) {
        if (after.totalRetrans !== null && before.totalRetrans !== null) retransmits += Math.max(0, after.totalRetrans - before.totalRetrans)
        probes += Math.max(0, after.probes - before.probes)
      }
      rec.kernel = after ?? null
      return input
    })
    const report = (): PassReport => ({ durationMs: performance.now() - started, sockets: recs.length, procScan: procDue, procScanMs, retransmits, probes })
    // Fast path: every socket idle and quiet — nothing for the classifier to weigh.
    if (!inFlight && !this.suspicion && inputs.every(quiet)) {
      this.unusual = false
      this.memory.clear()
      this.hosts = []
      this.deps.onPass(report(), undefined)
      return
    }
    const out = classify({
      now,
      sockets: inputs,
      memory: this.memory,
      probes: this.probes,
      options: o,
    })
    this.memory = out.memory
    this.hosts = out.hosts
    for (const v of out.verdicts) {
      const rec = byId.get(v.id)
      if (rec && rec.state !== 'evicting' && rec.state !== 'closed') this.deps.evict(rec, v)
    }
    for (const p of out.probe) this.maybeProbe(p.endpoint, p.urgent ? o.stallMs : o.probeIntervalMs, now, recs)
    // A stall or a probe request also asks for the /proc cross-check; anything unusual (a keepalive probe
    // out, a socket closing or gone) keeps the full cadence.
    this.suspicion = out.probe.length > 0 || out.hosts.some((h) => h.stalled > 0)
    this.unusual = this.suspicion || inputs.some((i) => !quiet(i))
    this.deps.onPass(report(), out)
  }

  private observe(rec: ConnRecord, procFresh: boolean, queryInFlight: boolean): SocketInput {
    const base = { id: rec.id, endpoint: endpointOf(rec), inUse: rec.state === 'in-use', queryInFlight }
    const fd = fdOf(rec.socket)
    if (fd === undefined) return { ...base, sample: undefined, gone: 'its socket handle is closed' }
    if (rec.goneReason) return { ...base, sample: undefined, gone: rec.goneReason }
    if (this.useTcpInfo) {
      const sample = sampleTcpInfo(fd)
      return { ...base, sample, gone: sample ? null : 'TCP_INFO failed on its fd' }
    }
    const row = rec.inode !== null ? this.procRows?.get(rec.inode) : this.procRowsByTuple?.get(tupleOf(rec.localAddress, rec.localPort, rec.remoteAddress, rec.remotePort))
    if (row) return { ...base, sample: sampleFromRow(row), gone: null }
    return { ...base, sample: undefined, gone: procFresh && rec.inode !== null ? 'its inode is not in /proc/net/tcp' : null }
  }

  /** The slow cross-check: /proc/net/tcp{,6} by inode, fd identity, and the process-wide foreign sockets. */
  private scanProc(now: number, recs: ConnRecord[]): void {
    this.lastProcScanAt = now
    // Only this process's sockets matter here; filtering before rows are built keeps a 20k-socket host cheap.
    // A socket whose inode could not be read (no /proc/self/fd) is found by its 4-tuple instead.
    const mine = socketInodesOf('self')
    const byTuple = recs.some((r) => r.inode === null)
    const table = readTcpTable(undefined, undefined, (inode) => byTuple || mine.has(inode))
    this.procRows = new Map(table.rows.map((r) => [r.inode, r]))
    this.procRowsByTuple = byTuple ? new Map(table.rows.map((r) => [tupleOf(r.localAddress, r.localPort, r.remoteAddress, r.remotePort), r])) : null
    for (const rec of recs) {
      const fd = fdOf(rec.socket)
      if (fd !== undefined && rec.inode !== null && socketInode(fd) !== rec.inode) rec.goneReason = `fd ${fd} now belongs to another socket`
      else if (rec.inode !== null && !this.procRows.has(rec.inode) && (!this.useTcpInfo || rec.kernel?.state === 7)) {
        rec.goneReason = 'its inode is not in /proc/net/tcp'
      }
    }
    const known = new Set<number>()
    const ports = new Set<number>([5432])
    for (const m of live) {
      for (const r of m.deps.registry.records()) if (r.inode !== null) known.add(r.inode)
      for (const p of m.ports()) ports.add(p)
    }
    for (const r of recs) if (r.inode !== null) known.add(r.inode)
    this.foreign = table.rows
      .filter((r) => mine.has(r.inode) && !known.has(r.inode) && ports.has(r.remotePort) && r.state !== 10)
      .map((r) => ({
        localAddress: r.localAddress, localPort: r.localPort, remoteAddress: r.remoteAddress, remotePort: r.remotePort,
        state: r.state, txQueue: r.txQueue, retransmits: r.retransmits, probes: r.probes, inode: r.inode,
      }))
  }

  private maybeProbe(endpoint: string, minIntervalMs: number, now: number, recs: ConnRecord[]): void {
    if (this.probing.has(endpoint) || now - (this.lastProbeAt.get(endpoint) ?? -Infinity) < minIntervalMs) return
    const rec = recs.find((r) => endpointOf(r) === endpoint)
    if (!rec) return
    this.probing.add(endpoint)
    this.lastProbeAt.set(endpoint, now)
    const target = { endpoint, ip: rec.remoteAddress ?? rec.configuredHost, port: rec.remotePort ?? rec.configuredPort, configuredHost: rec.configuredHost }
    void probe(this.deps.poolOptions, target, this.deps.options.probeTimeoutMs).then((result) => {
      this.probing.delete(endpoint)
      if (this.stopped) return
      this.probes.set(endpoint, result)
      this.deps.onProbe(result)
      this.tick() // act on a failed probe at once
    })
  }
}

function quiet(i: SocketInput): boolean {
  const k = i.sample
  return i.gone === null && k !== undefined && k.state === TcpState.ESTABLISHED && !k.outstanding && k.probes === 0 && k.retransmits === 0
}

function tupleOf(localAddress: string | null, localPort: number | null, remoteAddress: string | null, remotePort: number | null): string {
  return `${normalizeAddress(localAddress ?? '')}:${localPort}>${normalizeAddress(remoteAddress ?? '')}:${remotePort}`
}

export function endpointOf(rec: ConnRecord): string {
  return rec.remoteAddress !== null && rec.remotePort !== null
    ? `${normalizeAddress(rec.remoteAddress)}:${rec.remotePort}`
    : `${rec.configuredHost}:${rec.configuredPort}`
}
