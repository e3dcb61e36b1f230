/**
 * A real Prometheus for a fleet: the Debian package's binary (or PGG_PROMETHEUS), given a generated config
 * (static targets, rule files, scrape and evaluation intervals), optionally inside a network namespace, and
 * a small client for its HTTP API. Prometheus has no events to wait on: callers poll the API with a
 * deadline (`until`).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { KitError, KitErrorCodes } from './errors'

export interface PrometheusOptions {
  /** Address and port to listen on, e.g. '198.18.0.2:9090'. */
  listen: string
  /** A directory of its own: config and TSDB go there. */
  dir: string
  /** Run inside this network namespace (`ip netns exec`). */
  netns?: string
  /** @default 1 */
  scrapeIntervalSeconds?: number
  /** @default 1 */
  evaluationIntervalSeconds?: number
  ruleFiles?: string[]
  /** Static targets per job; `labels` become target labels (an `instance` label replaces the address). */
  jobs: { name: string; targets: { address: string; labels?: Record<string, string> }[] }[]
}

export interface PromSample {
  metric: Record<string, string>
  value: number
}

export interface PromAlert {
  labels: Record<string, string>
  annotations: Record<string, string>
  state: 'pending' | 'firing'
  activeAt: string
  value: string
}

/** The binary: PGG_PROMETHEUS, else `prometheus` on the PATH; null when there is none. */
export function prometheusBinary(): string | null {
  const bin = process.env.PGG_PROMETHEUS || 'prometheus'
  try {
    execFileSync(bin, ['--version'], { stdio: 'ignore' })
    return bin
  } catch {
    return null
  }
}

const READY = /Server is ready to receive web requests/
const START_DEADLINE_MS = 30_000

export class PrometheusServer {
  readonly url: string
  private readonly child: ChildProcess
  private output = ''

  private constructor(child: ChildProcess, listen: string) {
    this.child = child
    this.url = `http://${listen}`
    const keep = (d: Buffer): void => {
      this.output = (this.output + d.toString()).slice(-8192)
    }
    child.stdout!.on('data', keep)
    child.stderr!.on('data', keep)
  }

  static async start(o: PrometheusOptions): Promise<PrometheusServer> {
    const bin = prometheusBinary()
    if (!bin) throw new KitError(KitErrorCodes.PROMETHEUS_FAILED, 'the prometheus binary is not installed (Debian package prometheus; PGG_PROMETHEUS names another)')
    const config = {
      global: { scrape_interval: `${o.scrapeIntervalSeconds ?? 1}s`, scrape_timeout: `${o.scrapeIntervalSeconds ?? 1}s`, evaluation_interval: `${o.evaluationIntervalSeconds ?? 1}s` },
      rule_files: o.ruleFiles ?? [],
      scrape_configs: o.jobs.map((j) => ({
        job_name: j.name,
        static_configs: j.targets.map((t) => ({ targets: [t.address], labels: t.labels ?? {} })),
      })),
    }
    // JSON is YAML: no YAML writer needed.
    writeFileSync(join(o.dir, 'prometheus.yml'), JSON.stringify(config, null, 2))
    const args = [`--config.file=${join(o.dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(o.dir, 'data')}`, `--web.listen-address=${o.listen}`]
    const [cmd, argv] = o.netns ? ['ip', ['netns', 'exec', o.netns, bin, ...args]] : [bin, args]
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] })
    liveChildren.add(child)
    child.once('exit', () => liveChildren.delete(child))
    const server = new PrometheusServer(child, o.listen)
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL')
        reject(new KitError(KitErrorCodes.PROMETHEUS_FAILED, `prometheus was not ready within ${START_DEADLINE_MS} ms:\n${server.output.slice(-2000)}`))
      }, START_DEADLINE_MS)
      const onData = (): void => {
        if (!READY.test(server.output)) return
        clearTimeout(timer)
        resolve()
      }
      child.stdout!.on('data', onData)
      child.stderr!.on('data', onData)
      child.once('error', (err) => {
        clearTimeout(timer)
        reject(new KitError(KitErrorCodes.PROMETHEUS_FAILED, `prometheus could not be started: ${err.message}`, { cause: err }))
      })
      child.once('exit', (code, sig) => {
        clearTimeout(timer)
        reject(new KitError(KitErrorCodes.PROMETHEUS_FAILED, `prometheus exited (${code ?? sig}) before it was ready:\n${server.output.slice(-2000)}`))
      })
    })
    return server
  }

  /** The last lines it printed (for an error message). */
  get log(): string {
    return this.output
  }

  private async api<T>(path: string): Promise<T> {
    const res = await fetch(`${this.url}${path}`)
    const body = (await res.json()) as { status: string; error?: string; data: T }
    if (body.status !== 'success') throw new KitError(KitErrorCodes.PROMETHEUS_FAILED, `prometheus ${path}: ${body.error}`)
    return body.data
  }

  /** An instant query; values as numbers. */
  async query(expr: string): Promise<PromSample[]> {
    const data = await this.api<{ resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`)
    if (data.resultType !== 'vector') return []
    return data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }))
  }

  /** A range query: per series, [unix seconds, value] pairs. */
  async queryRange(expr: string, startS: number, endS: number, stepS: number): Promise<{ metric: Record<string, string>; values: [number, number][] }[]> {
    const q = `/api/v1/query_range?query=${encodeURIComponent(expr)}&start=${startS}&end=${endS}&step=${stepS}`
    const data = await this.api<{ result: { metric: Record<string, string>; values: [number, string][] }[] }>(q)
    return data.result.map((r) => ({ metric: r.metric, values: r.values.map(([t, v]) => [t, Number(v)] as [number, number]) }))
  }

  /** Alerts pending or firing now, with their annotations. */
  async alerts(): Promise<PromAlert[]> {
    return (await this.api<{ alerts: PromAlert[] }>('/api/v1/alerts')).alerts
  }

  /** The loaded rules, by group: health and last evaluation of each. */
  async rules(): Promise<{ name: string; rules: { name: string; type: string; health: string; lastError?: string; lastEvaluation: string }[] }[]> {
    return (await this.api<{ groups: { name: string; rules: { name: string; type: string; health: string; lastError?: string; lastEvaluation: string }[] }[] }>('/api/v1/rules')).groups
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    const exited = once(this.child, 'exit')
    this.child.kill('SIGTERM')
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  }
}

/** Prometheus processes still running when this process exits are killed, never orphaned. */
const liveChildren = new Set<ChildProcess>()
process.once('exit', () => {
  for (const c of liveChildren) c.kill('SIGKILL')
})
