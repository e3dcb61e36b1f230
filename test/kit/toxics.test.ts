/** Each toxic on real sockets: an echo server behind the userspace proxy. */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { fdOf } from '../../src/pg/internals'
import { loadSockopt } from '../../src/kernel/ffi'
import { parseTcpInfo } from '../../src/kernel/tcp-info'
import { KitErrorCodes } from '../../src/testing/errors'
import { type FaultProxy, FaultProxy as Proxy, faultProxy } from '../../src/testing/proxy'
import { Latency } from '../../src/testing/toxics'
import { nextEvent } from '../helpers'

let echo: Server
let echoPort: number
const serverSide: Socket[] = []
before(async () => {
  echo = createServer((s) => {
    serverSide.push(s)
    s.on('error', () => {})
    s.on('data', (d) => s.write(d))
  })
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r))
  echoPort = (echo.address() as { port: number }).port
})
after(() => {
  for (const s of serverSide) s.destroy()
  echo.close()
})

async function through(proxy: FaultProxy): Promise<Socket> {
  const s = connect(proxy.port, proxy.host)
  s.on('error', () => {})
  await once(s, 'connect')
  return s
}

/** Sends `msg` and resolves with the time until the echo came back. */
async function roundTrip(s: Socket, msg = 'ping'): Promise<number> {
  const t = Date.now()
  s.write(msg)
  let got = ''
  while (got.length < msg.length) got += (await once(s, 'data'))[0].toString()
  assert.equal(got, msg)
  return Date.now() - t
}

async function withProxy(fn: (p: FaultProxy) => Promise<void>, random?: () => number): Promise<void> {
  const p = await faultProxy({ host: '127.0.0.1', port: echoPort }, { random })
  try {
    await fn(p)
  } finally {
    await p.stop()
  }
}

describe('toxics', () => {
  it('no toxic: bytes pass unchanged', () =>
    withProxy(async (p) => {
      const s = await through(p)
      assert.ok((await roundTrip(s, 'x'.repeat(100_000))) < 1000)
      s.destroy()
    }))

  it('latency: a round trip takes at least the added latency (+ jitter bound)', () =>
    withProxy(async (p) => {
      const s = await through(p)
      p.add('latency', { latencyMs: 150, jitterMs: 20, direction: 'downstream' })
      const rtt = await roundTrip(s)
      assert.ok(rtt >= 130, `rtt ${rtt} ms`)
      s.destroy()
    }))

  it('latency jitter is seeded: the same seed replays the same delays, each within latencyMs ± jitterMs', () => {
    const delays = (seed?: number): number[] => {
      const l = new Latency({ latencyMs: 100, jitterMs: 40, ...(seed === undefined ? {} : { seed }) })
      return Array.from({ length: 50 }, () => l.nextDelayMs())
    }
    const a = delays(7)
    assert.deepEqual(delays(7), a)
    assert.notDeepEqual(delays(8), a)
    assert.deepEqual(delays(), delays(1), 'the default seed is 1')
    for (const d of a) assert.ok(d >= 60 && d <= 140, `delay ${d}`)
    assert.ok(new Set(a).size > 40, 'the draws vary')
    assert.equal(new Latency({ latencyMs: 50 }).nextDelayMs(), 50, 'no jitter: exactly latencyMs')
  })

  it('bandwidth: 64 KB at 128 KB/s takes about half a second', () =>
    withProxy(async (p) => {
      const s = await through(p)
      p.add('bandwidth', { rateKBps: 128, direction: 'downstream' })
      const t = await roundTrip(s, 'y'.repeat(64 * 1024))
      assert.ok(t >= 450, `took ${t} ms`)
      s.destroy()
    }))

  it('blackhole: data is ACKed by the proxy and never forwarded; the link stays open; removing it lets data flow', () =>
    withProxy(async (p) => {
      const s = await through(p)
      const hole = p.add('blackhole', { direction: 'upstream' })
      s.write('lost')
      let received = ''
      s.on('data', (d) => (received += d))
      // Let the kernel ACK it, then look at the client's own socket: nothing outstanding, still ESTABLISHED.
      await new Promise((r) => setTimeout(r, 200))
      const ffi = loadSockopt()
      if (ffi.ok) {
        const buf = Buffer.alloc(232)
        const info = parseTcpInfo(buf, ffi.sockopt.tcpInfo(fdOf(s)!, buf))
        assert.equal(info.state, 1, 'ESTABLISHED')
        assert.equal(info.unacked, 0, 'the proxy ACKed: the client kernel sees nothing wrong')
      }
      assert.equal(received, '')
      assert.equal(s.destroyed, false)
      p.remove(hole)
      assert.equal(await roundTrip(s, 'back').then(() => received.endsWith('back')), true)
      s.destroy()
    }))

  it('timeout: stops data and closes the link after timeoutMs', () =>
    withProxy(async (p) => {
      const s = await through(p)
      p.add('timeout', { timeoutMs: 300 })
      const t = Date.now()
      s.write('hello?')
      await nextEvent(s, 'close', 3000)
      assert.ok(Date.now() - t >= 250)
    }))

  it('reset-peer: the client gets ECONNRESET', () =>
    withProxy(async (p) => {
      const s = connect(p.port, p.host)
      await once(s, 'connect')
      const [err] = await new Promise<[Error & { code?: string }]>((resolve) => {
        s.once('error', (e) => resolve([e]))
        p.add('reset-peer', { timeoutMs: 50 })
      })
      assert.equal(err.code, 'ECONNRESET')
    }))

  it('slow-close: the server closing reaches the client delayMs later', () =>
    withProxy(async (p) => {
      const s = await through(p)
      await roundTrip(s)
      p.add('slow-close', { delayMs: 300, direction: 'downstream' })
      const t = Date.now()
      serverSide[serverSide.length - 1].end()
      await nextEvent(s, 'end', 3000)
      assert.ok(Date.now() - t >= 280, `${Date.now() - t} ms`)
      s.destroy()
    }))

  it('toxicity: drawn once per link (seeded): some links affected, some not', () => {
    let seed = 42
    const random = (): number => ((seed = (seed * 48271) % 2147483647) / 2147483647)
    return withProxy(async (p) => {
      p.add('latency', { latencyMs: 300, toxicity: 0.5 })
      const rtts: number[] = []
      for (let i = 0; i < 8; i++) {
        const s = await through(p)
        rtts.push(await roundTrip(s))
        s.destroy()
      }
      const slow = rtts.filter((r) => r >= 300).length
      assert.ok(slow > 0 && slow < 8, `slow links: ${slow}/8 (${rtts})`)
    }, random)
  })

  it("toxics' timers are unref'd: pending delays and link timers do not keep a process alive", async () => {
    // A child process arms every toxic's timer for ten minutes on a fake link; it must exit on its own.
    const script = `
      const { Latency, Bandwidth, Timeout, ResetPeer, SlowClose } = require(${JSON.stringify(require.resolve('../../src/testing/toxics'))})
      const link = { id: 1, closed: false, reset() {}, close() {} }
      new Timeout({ timeoutMs: 600000 }).attach(link)
      new ResetPeer({ timeoutMs: 600000 }).attach(link)
      void new Latency({ latencyMs: 600000 }).pipe(Buffer.alloc(1), link)
      void new Bandwidth({ rateKBps: 1 }).pipe(Buffer.alloc(600 * 1024), link)
      void new SlowClose({ delayMs: 600000 }).beforeClose(link)
      process.on('exit', () => console.log('exited on its own'))
    `
    const t = Date.now()
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['--import', 'tsx', '-e', script], { timeout: 30_000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)
      )
    )
    assert.match(out, /exited on its own/)
    assert.ok(Date.now() - t < 30_000)
  })

  it('kit errors carry codes: a proxy not listening', () => {
    const p = new Proxy({ host: '127.0.0.1', port: echoPort })
    assert.throws(() => p.port, (e: Error & { code?: string }) =>
      e.code === KitErrorCodes.PROXY_NOT_LISTENING && /^pg-pool-guard\/testing: the proxy in front of 127\.0\.0\.1:\d+ is not listening/.test(e.message))
  })

  it('unknown toxics and bad toxicity are refused with clear errors', () =>
    withProxy(async (p) => {
      assert.throws(() => p.add('nope' as never, {} as never), /unknown toxic 'nope'; known: latency, bandwidth/)
      assert.throws(() => p.add('blackhole', { toxicity: 2 }), /toxicity must be in \[0, 1\]/)
      assert.throws(() => p.add('blackhole', { toxicity: 2 }), (e: Error & { code?: string }) => e.code === 'PGG_CONFIG_INVALID')
      assert.throws(() => p.add('nope' as never, {} as never), (e: Error & { code?: string }) => e.code === 'PGG_CONFIG_INVALID')
      assert.throws(() => p.add('bandwidth', { rateKBps: 0 }), (e: Error & { code?: string }) => e.code === 'PGG_CONFIG_INVALID' && /rateKBps must be > 0/.test(e.message))
    }))
})
