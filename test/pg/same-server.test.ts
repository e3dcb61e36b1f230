/**
 * One server, two names (a VIP or proxy plus its direct address) under target_session_attrs=read-write.
 * Both names report the same system identifier and timeline, which used to be judged a split-brain: one
 * name was fenced, and when the other path failed the healthy server was refused (PGG_NO_HOST_AVAILABLE
 * for seconds on end). The monitors now read the server's identity, and one server is never fenced
 * against itself. (A real promoted standby still fences its old primary: test/pg/failover.test.ts and
 * test/pg/split-brain-window.test.ts.)
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { ErrorCodes, type EvictionEvent, type HostState, Pool } from '../../src/index'
import { blackhole, type KernelFault } from '../../src/testing/kernel-faults'
import { type FaultProxy, faultProxy } from '../../src/testing/proxy'
import { type WriteWorkload, writeLoad } from '../../src/testing/workload'
import { kernelSkip, until, useCluster } from '../helpers'

const A = '127.0.9.2'
const A2 = '127.0.9.12' // the same server, listening on a second loopback address
const cluster = useCluster({ primaryHost: A, settings: { listen_addresses: `${A},${A2}` } })
const kernelSkipped = kernelSkip('test/pg/same-server.test.ts (iptables case)')
const faults: KernelFault[] = []
const proxies: FaultProxy[] = []
after(async () => {
  for (const f of faults) await f.remove()
  for (const p of proxies) await p.stop()
})

/** Watches a guarded pool for anything that would mean "one server judged twice". */
function watchFencing(pool: Pool): { fencedSeen: string[]; evictions: EvictionEvent[] } {
  const out = { fencedSeen: [] as string[], evictions: [] as EvictionEvent[] }
  pool.guard.on('topology', (h: HostState) => h.fenced && out.fencedSeen.push(`${h.key}: ${h.fenced}`))
  pool.guard.on('evict', (e) => out.evictions.push(e))
  return out
}

function identified(pool: Pool): boolean {
  const hosts = pool.guard.topology().hosts
  return hosts.length === 2 && hosts.every((h) => h.serverId !== null && h.serverId === hosts[0].serverId && h.reachable === true)
}

function refusals(load: WriteWorkload): number {
  return load.failures.filter((f) => f.code === ErrorCodes.NO_HOST_AVAILABLE || f.code === ErrorCodes.HOST_FENCED).length
}

describe('one server listed under two names (target_session_attrs=read-write)', () => {
  it('two addresses of one server: writes keep working through either name while the other is blackholed; no fencing', { skip: kernelSkipped }, async () => {
    const c = cluster.get()
    const pool = new Pool({ ...c.config, host: `${A},${A2}`, max: 8, guard: { targetSessionAttrs: 'read-write' } })
    pool.on('error', () => {})
    const seen = watchFencing(pool)
    const load = await writeLoad(pool, { table: 'same_server_ip' })
    await load.firstAckOn(A)
    await until(() => identified(pool), 'both monitors read the same server identity')
    assert.deepEqual(pool.guard.topology().hosts.map((h) => h.fenced), [null, null])

    const switchMs: number[] = []
    for (const [cut, other] of [[A, A2], [A2, A]]) {
      // The other name must be known up again first (its monitor was cut in the previous round).
      await until(() => pool.guard.topology().hosts.every((h) => h.reachable === true && h.down === null), `${other} is seen up again`)
      const fault = await blackhole(cut, { port: c.port })
      faults.push(fault)
      const at = Date.now()
      const first = await load.firstAckOn(other, at, 15_000)
      await load.firstAckOn(other, first.at + 500) // and they keep landing there
      switchMs.push(first.at - at)
      await fault.remove()
    }
    const s = await load.stop()
    console.log(`# same server, two addresses: writes moved to the other name ${switchMs.join(' ms, ')} ms after each cut; ` +
      `${s.failures} failed writes ${JSON.stringify(s.failureCodes)}; by address ${JSON.stringify(s.byHost)}`)
    assert.deepEqual(seen.fencedSeen, [], 'one server is never fenced against itself')
    assert.equal(seen.evictions.filter((e) => e.reason === 'fenced').length, 0)
    assert.equal(refusals(load), 0, 'the healthy server was never refused')
    assert.ok(s.byHost[A] > 0 && s.byHost[A2] > 0, 'writes went through both names')
    assert.equal(pool.guard.topology().primary !== null, true)
    await pool.end()
  })

  it('a proxy in front of the server and its direct address: the proxy cut off (blackhole toxic), writes go direct; no fencing', async () => {
    const c = cluster.get()
    const proxy = await faultProxy({ host: A, port: c.port }, { listenHost: A2 })
    proxies.push(proxy)
    // The proxy first, so the writers start on it.
    const pool = new Pool({ ...c.config, host: [proxy.host, A], port: [proxy.port, c.port] as never, max: 8, guard: { targetSessionAttrs: 'read-write' } })
    pool.on('error', () => {})
    const seen = watchFencing(pool)
    const load = await writeLoad(pool, { table: 'same_server_proxy' })
    await load.firstAckOn(A)
    await until(() => identified(pool), 'both monitors read the same server identity')
    assert.ok(pool.guard.snapshot().every((r) => r.remotePort === proxy.port), 'the writers started on the proxy')

    const hole = proxy.add('blackhole', {})
    const at = Date.now()
    // Through the proxy the server's own address answers too: a write *sent* after the cut and acknowledged went direct.
    await until(() => load.sentAndAckedBy(A, at).length >= 8, 'writes sent after the cut are acknowledged (direct path)', 15_000)
    const firstDirect = load.sentAndAckedBy(A, at)[0]
    const s = await load.stop()
    proxy.remove(hole)
    console.log(`# same server, proxy + direct: first write acknowledged over the direct path ${firstDirect.at - at} ms after the proxy was cut off; ` +
      `${s.failures} failed writes ${JSON.stringify(s.failureCodes)}`)
    assert.deepEqual(seen.fencedSeen, [], 'one server is never fenced against itself')
    assert.equal(seen.evictions.filter((e) => e.reason === 'fenced').length, 0)
    assert.equal(refusals(load), 0, 'the healthy server was never refused')
    assert.ok(pool.guard.snapshot().filter((r) => r.state === 'idle' || r.state === 'in-use').every((r) => r.remotePort === c.port), 'only direct sockets remain')
    await pool.end()
  })
})
