/**
 * Routing by host health on a real lossy link (issue 13): a two-host pool (two fault proxies on their own
 * loopback addresses, both in front of one primary, so both can take every query) recycles its connections
 * every ~3 s. In list order they all open on host A. With 18 % of the packets to A dropped by iptables, A
 * turns degraded, and from then on every new connection opens on B — A stays in the plan (it is slow, not
 * dead), nothing is evicted for being slow.
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import type { Client } from 'pg'
import { type EvictionEvent, type HealthTransition, Pool } from '../../src/index'
import { type KernelFault, loss } from '../../src/testing/kernel-faults'
import { type FaultProxy, faultProxy } from '../../src/testing/proxy'
import { kernelSkip, until, useCluster } from '../helpers'
import { queryLoop } from '../helpers-load'

const skip = kernelSkip('test/kernel/routing.test.ts')
const cluster = useCluster({ primaryHost: '127.0.22.20' })
const proxies: FaultProxy[] = []
let fault: KernelFault | undefined
after(async () => {
  await fault?.remove()
  for (const p of proxies) await p.stop()
})

describe('routing prefers healthy hosts (real packet loss)', { skip }, () => {
  it('one of two hosts degraded: new connections open on the healthy one; no eviction', async () => {
    const c = cluster.get()
    const target = { host: c.primary.host, port: c.port }
    const a = await faultProxy(target, { listenHost: '127.0.22.21' })
    const b = await faultProxy(target, { listenHost: '127.0.22.22' })
    proxies.push(a, b)
    const A = `${a.host}:${a.port}`
    const B = `${b.host}:${b.port}`
    const pool = new Pool({ ...c.config, host: [a.host, b.host], port: [a.port, b.port], max: 8, maxLifetimeSeconds: 3 })
    pool.on('error', () => {})
    // Each connection with the time its attempt began (its record's createdAt): one planned just before A
    // turned degraded may finish after it (a SYN lost to the 18 % loss is sent again after 1 s).
    const opened: { host: string; at: number }[] = []
    pool.on('connect', (client: Client) => {
      const row = pool.guard.snapshot().find((r) => r.backendPid === (client as unknown as { processID: number }).processID)
      opened.push({ host: `${client.host}:${client.port}`, at: row?.createdAt ?? Date.now() })
    })
    const transitions: HealthTransition[] = []
    pool.guard.on('health', (t) => transitions.push(t))
    const evictions: EvictionEvent[] = []
    pool.guard.on('evict', (e) => evictions.push(e))
    const load = queryLoop(() => pool.query('SELECT 1'))

    // Healthy: list order, every connection (the first ones and their replacements) on A.
    await until(() => opened.length >= 12, 'connections recycled while healthy', 15_000)
    assert.deepEqual([...new Set(opened.map((o) => o.host))], [A], 'both healthy: list order')

    fault = await loss(a.host, 0.18, { port: a.port, direction: 'to' })
    const lossAt = Date.now()
    await until(() => transitions.some((t) => t.to === 'degraded'), 'host A turns degraded', 10_000)
    const degraded = transitions.find((t) => t.to === 'degraded')!
    assert.equal(degraded.endpoint, A)
    const after = (): { host: string; at: number }[] => opened.filter((o) => o.at > degraded.at)
    await until(() => after().length >= 8, '8 connections begun after A was degraded', 15_000)
    const moved = after()
    const onA = pool.guard.snapshot().filter((r) => `${r.configuredHost}:${r.configuredPort}` === A).length
    await load.stop()
    await fault.remove()
    fault = undefined
    console.log(`# A degraded ${degraded.at - lossAt} ms after the loss began (${degraded.evidence}); ` +
      `${moved.length} connections begun since, on ${[...new Set(moved.map((o) => o.host))].join(', ')}; ${onA} still on A`)
    assert.deepEqual([...new Set(moved.map((o) => o.host))], [B], 'every new connection on the healthy host')
    assert.equal(transitions.some((t) => t.endpoint === B && t.to === 'degraded'), false, 'B was never degraded')
    assert.deepEqual(evictions.map((e) => `${e.reason}: ${e.evidence}`), [], 'a degraded host is never evicted for being slow')
    assert.deepEqual(load.outcomes.filter((o) => !o.ok).map((o) => o.code), [])
    await pool.end()
  })
})
