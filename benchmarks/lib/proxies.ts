/**
 * The kit's fault proxies (src/testing/proxy.ts) in a child process, driven over IPC: a benchmark that
 * measures its own CPU (process.cpuUsage) must not count the proxies' work as the pool's.
 *
 *   const px = await childProxies([{ listenHost: '127.0.22.2', target }, ...])   // px.ports[i]
 *   await px.latency(0, 100)   // +100 ms on every chunk from the server through proxy 0
 *   await px.clear(0); px.stop()
 */
import { type ChildProcess, fork } from 'node:child_process'
import { faultProxy, type FaultProxy } from '../../src/testing/proxy'

interface Spec { listenHost: string; target: { host: string; port: number } }
type Cmd = { cmd: 'start'; specs: Spec[] } | { cmd: 'latency'; index: number; ms: number } | { cmd: 'clear'; index: number }
type Msg = Cmd & { id: number }

export interface ChildProxies {
  ports: number[]
  latency(index: number, ms: number): Promise<void>
  clear(index: number): Promise<void>
  stop(): void
}

export async function childProxies(specs: Spec[]): Promise<ChildProxies> {
  const child: ChildProcess = fork(__filename, ['--proxy-child'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  let seq = 0
  const waiting = new Map<number, (v: unknown) => void>()
  const failed = new Set<(e: Error) => void>()
  child.on('message', (m: { id: number; result: unknown }) => waiting.get(m.id)?.(m.result))
  child.once('exit', (code) => {
    for (const f of failed) f(new Error(`proxy child exited ${code}`))
  })
  const call = <T>(msg: Cmd): Promise<T> =>
    new Promise((resolve, reject) => {
      const id = ++seq
      failed.add(reject)
      waiting.set(id, (v) => {
        waiting.delete(id)
        failed.delete(reject)
        resolve(v as T)
      })
      child.send({ ...msg, id })
    })
  const ports = await call<number[]>({ cmd: 'start', specs })
  return {
    ports,
    latency: (index, ms) => call({ cmd: 'latency', index, ms }),
    clear: (index) => call({ cmd: 'clear', index }),
    stop: () => void child.kill('SIGKILL'),
  }
}

// The child: holds the proxies, answers each message with its id.
if (process.argv.includes('--proxy-child')) {
  const proxies: FaultProxy[] = []
  process.on('message', async (m: Msg) => {
    let result: unknown = null
    if (m.cmd === 'start') {
      for (const s of m.specs) proxies.push(await faultProxy(s.target, { listenHost: s.listenHost }))
      result = proxies.map((p) => p.port)
    } else if (m.cmd === 'latency') {
      proxies[m.index].add('latency', { latencyMs: m.ms, direction: 'downstream' })
    } else if (m.cmd === 'clear') {
      proxies[m.index].clear()
    }
    process.send!({ id: m.id, result })
  })
  process.on('disconnect', () => process.exit(0))
}
