/**
 * Failover timings, guard vs pg.Pool, same run, 8 writers through each pool:
 *   1. failover: the primary is blackholed (iptables DROP) while the standby is promoted;
 *   2. split-brain: the standby is promoted while the old primary stays up and writable, and the DNS name
 *      flips to the new primary (for pools given the name) — writes that reach the old primary after the
 *      promotion are writes the new timeline never sees;
 *   3. 18 % packet loss for 20 s: failed writes and evictions;
 *   4. behind a virtual address (iptables DNAT, a Kubernetes Service): the standby promoted, the address
 *      switched to it, the old primary left up and writable; 8 writers with a 20 ms pause, watched 20 s.
 * pg.Pool gets what its users give it: one host (the name, for the DNS case); "tuned" adds keepAlive,
 * keepAliveInitialDelayMillis 1000, query_timeout 5000, connectionTimeoutMillis 2000.
 * Needs root (iptables) for 1 and 3.
 *
 *   node --import tsx benchmarks/failover.ts [--smoke]
 */
import pg from 'pg'
import { Pool } from '../src/index'
import { lookupStream } from '../src/topology/lookup'
import { type Cluster, startCluster } from '../src/testing/cluster'
import { blackhole, kernelFaultsUnavailable, loss } from '../src/testing/kernel-faults'
import { writeLoad, type WriteWorkload } from '../src/testing/workload'
import { runMain } from './lib/main'

const smoke = process.argv.includes('--smoke')
const WATCH_MS = smoke ? 2_000 : 15_000
const TUNED = { keepAlive: true, keepAliveInitialDelayMillis: 1000, query_timeout: 5000, connectionTimeoutMillis: 2000 }

type Maker = (c: Cluster, name?: { host: string; lookup: (h: string) => Promise<string[]> }) => pg.Pool
const contenders: [string, Maker][] = [
  ['pg-pool-guard, both hosts (read-write)', (c) => new Pool({ ...c.config, host: c.hosts, max: 8, guard: { targetSessionAttrs: 'read-write' } })],
  ['pg-pool-guard, one DNS name', (c, n) => new Pool({ ...c.config, host: n!.host, max: 8, guard: { lookup: n!.lookup } })],
  ['pg.Pool, one DNS name', (c, n) => new pg.Pool({ ...c.config, host: n!.host, max: 8, stream: lookupStream(n!.lookup) } as pg.PoolConfig)],
  ['pg.Pool tuned, one DNS name', (c, n) => new pg.Pool({ ...c.config, ...TUNED, host: n!.host, max: 8, stream: lookupStream(n!.lookup) } as pg.PoolConfig)],
]

const s = (ms: number | undefined): string => (ms === undefined ? `none in ${WATCH_MS / 1000} s` : `${(ms / 1000).toFixed(2)} s`)

let seq = 0
/** A fresh primary + standby on their own addresses, with a DNS name that can flip. */
async function setup(): Promise<{ c: Cluster; name: { host: string; lookup: (h: string) => Promise<string[]> }; flip(): void }> {
  const n = seq++
  const c = await startCluster({ standby: true, primaryHost: `127.0.1.${10 + 2 * n}`, standbyHost: `127.0.1.${11 + 2 * n}` })
  let answer = c.servers[0].host
  return {
    c,
    name: { host: 'db.bench.test', lookup: async () => [answer] },
    flip: () => {
      answer = c.servers[1].host
    },
  }
}

async function run(label: string, make: Maker, scenario: 'failover' | 'split-brain'): Promise<string> {
  const { c, name, flip } = await setup()
  const [a, b] = c.servers
  const pool = make(c, name)
  pool.on('error', () => {})
  let fault: { remove(): Promise<void> } | undefined
  let load: WriteWorkload | undefined
  try {
    load = await writeLoad(pool, { writers: 8 })
    await load.firstAckOn(a.host)
    await c.caughtUp()
    const t0 = Date.now()
    if (scenario === 'failover') fault = await blackhole(a.host, { port: c.port })
    await c.promote(b)
    flip()
    const first = await load.firstAckOn(b.host, t0, WATCH_MS).then((x) => x.at - t0, () => undefined)
    const remaining = WATCH_MS - (Date.now() - t0)
    if (remaining > 0) await new Promise((r) => setTimeout(r, Math.min(remaining, 3000)))
    const stopping = load.stop()
    const summary = await Promise.race([stopping, new Promise<undefined>((r) => setTimeout(() => r(undefined), 3000))])
    const oldAfter = load.ackedBy(a.host, t0 + 1)
    const lastOld = oldAfter.length ? oldAfter.reduce((m, x) => Math.max(m, x.at), 0) - t0 : undefined
    const hung = load.failures.length + load.acks.length === 0 ? 8 : undefined
    const inflightHung = summary === undefined ? 'writers still hung at the end' : `${summary.failures} failed (${Object.entries(summary.failureCodes).map(([k, v]) => `${v} ${k}`).join(', ') || '-'}), slowest ${(summary.slowestMs / 1000).toFixed(1)} s`
    if (scenario === 'failover') return `| ${label} | ${s(first)} | ${inflightHung}${hung ? `, ${hung} hung` : ''} |`
    return `| ${label} | ${s(first)} | ${oldAfter.length} | ${lastOld === undefined ? '-' : `${(lastOld / 1000).toFixed(2)} s`} |`
  } finally {
    await fault?.remove()
    void pool.end().catch(() => {})
    await c.stop()
  }
}

async function lossRun(label: string, make: (c: Cluster) => pg.Pool): Promise<string> {
  const c = await startCluster({ primaryHost: `127.0.1.${100 + seq++}` })
  const pool = make(c)
  pool.on('error', () => {})
  let evictions = 0
  if (pool instanceof Pool) pool.guard.on('evict', () => evictions++)
  const load = await writeLoad(pool, { writers: 8 })
  await load.firstAckOn(c.primary.host)
  const f = await loss(c.primary.host, 0.18, { port: c.port, direction: 'to' })
  await new Promise((r) => setTimeout(r, smoke ? 1000 : 20_000))
  await f.remove()
  const sum = await load.stop()
  await pool.end()
  await c.stop()
  return `| ${label} | ${sum.acks} | ${sum.failures} | ${pool instanceof Pool ? evictions : '-'} | ${(sum.slowestMs / 1000).toFixed(1)} s |`
}

const VIP_WATCH_MS = smoke ? 2_000 : 20_000
type VipMaker = (c: Cluster, vip: { host: string; port: number }) => pg.Pool
const vipContenders: [string, boolean, VipMaker][] = [
  ['pg-pool-guard (defaults), standby watched', true, (c, v) => new Pool({ ...c.config, host: v.host, port: v.port, max: 8 })],
  ['pg-pool-guard (defaults), standby out of reach', false, (c, v) => new Pool({ ...c.config, host: v.host, port: v.port, max: 8 })],
  ['pg.Pool', true, (c, v) => new pg.Pool({ ...c.config, host: v.host, port: v.port, max: 8 })],
  ['pg.Pool tuned', true, (c, v) => new pg.Pool({ ...c.config, ...TUNED, host: v.host, port: v.port, max: 8 })],
]

async function vipRun(label: string, ownReplicationAddress: boolean, make: VipMaker): Promise<string> {
  const n = seq++
  const c = await startCluster({ standby: true, primaryHost: `127.0.2.${10 + 3 * n}`, standbyHost: `127.0.2.${11 + 3 * n}`, replicationFromOwnAddress: ownReplicationAddress })
  const [a, b] = c.servers
  const vip = await c.virtualAddress({ address: `127.0.2.${12 + 3 * n}` })
  const pool = make(c, vip)
  pool.on('error', () => {})
  try {
    const load = await writeLoad(pool, { writers: 8, pauseMs: 20 })
    await load.firstAckOn(a.host)
    await c.caughtUp()
    if (pool instanceof Pool && ownReplicationAddress) {
      // The standby is learnt from the primary and watched: give the guard its first look.
      for (const deadline = Date.now() + 10_000; !pool.guard.topology().hosts.some((h) => h.discoveredFrom !== null && h.role?.inHotStandby); ) {
        if (Date.now() > deadline) throw new Error('the standby was not discovered')
        await new Promise((r) => setTimeout(r, 20))
      }
    }
    const t0 = Date.now()
    await c.promote(b)
    await vip.switchTo(b)
    const first = await load.firstAckOn(b.host, t0, VIP_WATCH_MS).then((x) => x.at - t0, () => undefined)
    const remaining = VIP_WATCH_MS - (Date.now() - t0)
    if (remaining > 0) await new Promise((r) => setTimeout(r, remaining))
    const summary = await Promise.race([load.stop(), new Promise<undefined>((r) => setTimeout(() => r(undefined), 3000))])
    const old = load.ackedBy(a.host, t0)
    const last = old.length ? old.reduce((m, x) => Math.max(m, x.at), 0) - t0 : undefined
    const failed = summary ? `${summary.failures}${summary.failures ? ` (${Object.entries(summary.failureCodes).map(([k, v]) => `${v} ${k}`).join(', ')})` : ''}` : 'writers hung'
    return `| ${label} | ${old.length} | ${last === undefined ? '-' : `${(last / 1000).toFixed(2)} s`} | ${first === undefined ? `never (in ${VIP_WATCH_MS / 1000} s)` : `${(first / 1000).toFixed(2)} s`} | ${failed} |`
  } finally {
    void pool.end().catch(() => {})
    await vip.remove()
    await c.stop()
  }
}

async function main(): Promise<void> {
  const why = kernelFaultsUnavailable()
  console.log('8 writers per pool; t0 = the fault (failover: blackhole + promote; split-brain: promote + DNS flip).\n')
  if (why) {
    console.log(`Failover with blackhole: skipped (${why}).\n`)
  } else {
    console.log(`Failover: primary blackholed while the standby is promoted (watched ${WATCH_MS / 1000} s)\n`)
    console.log('| pool | first write on the new primary after t0 | writes in the window |')
    console.log('| --- | --- | --- |')
    for (const [label, make] of contenders) console.log(await run(label, make, 'failover'))
  }
  console.log(`\nSplit-brain: standby promoted, old primary still writable, DNS flipped (watched ${WATCH_MS / 1000} s)\n`)
  console.log('| pool | first write on the new primary after t0 | writes the old primary acknowledged after t0 | last of them |')
  console.log('| --- | --- | --- | --- |')
  for (const [label, make] of contenders) console.log(await run(label, make, 'split-brain'))
  if (!why) {
    console.log(`\n18 % packet loss (to the host) for ${smoke ? 1 : 20} s, 8 writers\n`)
    console.log('| pool | writes acknowledged | failed | evictions | slowest write |')
    console.log('| --- | --- | --- | --- | --- |')
    console.log(await lossRun('pg-pool-guard', (c) => new Pool({ ...c.config, max: 8 })))
    console.log(await lossRun('pg.Pool', (c) => new pg.Pool({ ...c.config, max: 8 })))
    console.log(`\nBehind a virtual address (iptables DNAT, as kube-proxy builds a Service): the standby promoted and the address switched to it, the old primary left up and writable; one configured address, 8 writers with a 20 ms pause (watched ${VIP_WATCH_MS / 1000} s). "Standby watched": the kit gives the walreceiver its own source address, so the primary's pg_stat_replication names it; "out of reach": it leaves from 127.0.0.1 and the guard falls back to its address checks (every 2 s).\n`)
    console.log('| pool | writes the old primary acknowledged after the promotion | last of them | first write on the new primary | failed writes |')
    console.log('| --- | --- | --- | --- | --- |')
    for (const [label, own, make] of vipContenders) console.log(await vipRun(label, own, make))
  }
}

runMain(main)
