// Captures struct tcp_info buffers and /proc/net/tcp{,6} lines from real sockets in each state the
// classifier cares about, for test/fixtures/. Needs root (iptables). Run: node --import tsx scripts/capture-fixtures.ts
import net from 'node:net'
import { readFileSync } from 'node:fs'
import { loadSockopt, IPPROTO_TCP, TCP_KEEPIDLE, TCP_KEEPINTVL, SOL_SOCKET, SO_KEEPALIVE } from '../src/kernel/ffi'
import { blackhole } from '../src/testing/kernel-faults'
import { socketInode } from '../src/guard/registry'

const l = loadSockopt()
if (!l.ok) throw new Error(l.reason)
const { sockopt } = l
const fdOf = (s: net.Socket): number => (s as unknown as { _handle: { fd: number } })._handle.fd
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function capture(label: string, s: net.Socket): void {
  const fd = fdOf(s)
  const buf = Buffer.alloc(232)
  const n = sockopt.tcpInfo(fd, buf)
  const inode = socketInode(fd)
  const lines = ['tcp', 'tcp6'].flatMap((f) => readFileSync(`/proc/self/net/${f}`, 'utf8').split('\n').filter((x) => x.trim().split(/\s+/)[9] === String(inode)).map((x) => `${f}: ${x.trim()}`))
  console.log(JSON.stringify({ label, tcpInfo: buf.subarray(0, n).toString('hex'), proc: lines }))
}

async function server(host: string, onConn: (s: net.Socket) => void = () => {}): Promise<number> {
  const srv = net.createServer({ allowHalfOpen: true }, onConn)
  await new Promise<void>((r) => srv.listen(0, host, r))
  srv.unref()
  return (srv.address() as net.AddressInfo).port
}
async function connect(host: string, port: number, opts: net.NetConnectOpts = { port, host }): Promise<net.Socket> {
  const s = net.connect({ ...opts, port, host, allowHalfOpen: true } as net.NetConnectOpts)
  await new Promise((r) => s.once('connect', r))
  s.on('error', () => {})
  return s
}

async function main() {
  const ip = '127.0.0.250'
  // 1. retransmitting: data outstanding on a blackholed link
  {
    const port = await server(ip)
    const s = await connect(ip, port)
    const f = await blackhole(ip, { port })
    s.write('SELECT 1')
    await sleep(1500)
    capture('unacked-retransmitting', s)
    await f.remove()
    s.destroy()
  }
  // 2. keepalive probes unanswered
  {
    const port = await server(ip)
    const s = await connect(ip, port)
    const fd = fdOf(s)
    sockopt.setInt(fd, SOL_SOCKET, SO_KEEPALIVE, 1)
    sockopt.setInt(fd, IPPROTO_TCP, TCP_KEEPIDLE, 1)
    sockopt.setInt(fd, IPPROTO_TCP, TCP_KEEPINTVL, 1)
    const f = await blackhole(ip, { port })
    await sleep(3500)
    capture('keepalive-unanswered', s)
    await f.remove()
    s.destroy()
  }
  // 3. CLOSE_WAIT: the server ended, the client never did
  {
    const port = await server(ip, (c) => c.end())
    const s = await connect(ip, port)
    await new Promise((r) => s.once('end', r))
    capture('close-wait', s)
    s.destroy()
  }
  // 4. IPv4-mapped IPv6 and native IPv6 established
  {
    const port = await server('::')
    const s = await connect('::ffff:127.0.0.1', port)
    capture('ipv4-mapped-established', s)
    s.destroy()
    const s6 = await connect('::1', port)
    capture('ipv6-established', s6)
    s6.destroy()
  }
}
main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1) })
