/** N idle TCP sockets on this host, held by two child processes: the "20k foreign sockets" of the benchmarks. */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface Crowd {
  sockets: number
  stop(): void
}

export async function socketCrowd(sockets: number): Promise<Crowd> {
  const child = join(__dirname, 'crowd-child.mjs')
  const portFile = join(tmpdir(), `pgg-crowd-${process.pid}-${Date.now()}`)
  const server = spawn(process.execPath, [child, 'server', portFile], { stdio: 'ignore' })
  const procs: ChildProcess[] = [server]
  const stop = (): void => {
    for (const p of procs) p.kill('SIGKILL')
    rmSync(portFile, { force: true })
  }
  try {
    while (!existsSync(portFile) || readFileSync(portFile, 'utf8') === '') await new Promise((r) => setTimeout(r, 20))
    const port = readFileSync(portFile, 'utf8')
    const connections = Math.floor(sockets / 2) // each connection is two sockets on loopback
    if (connections > 0) {
      const client = spawn(process.execPath, [child, 'client', port, String(connections)], { stdio: ['ignore', 'pipe', 'ignore'] })
      procs.push(client)
      await new Promise<void>((resolve, reject) => {
        client.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve())
        client.once('exit', (code) => reject(new Error(`crowd client exited ${code}`)))
      })
    }
  } catch (err) {
    stop()
    throw err
  }
  return { sockets, stop }
}
