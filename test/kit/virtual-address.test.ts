/**
 * The kit's virtual address (a Kubernetes Service / VIP / L4 balancer made of iptables DNAT) and its
 * replication from the standbys' own addresses: what a user's failover test behind a VIP rests on.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { after, describe, it } from 'node:test'
import pg from 'pg'
import { ConfigError } from '../../src/errors'
import { type Cluster, startCluster } from '../../src/testing/cluster'
import { KitError, KitErrorCodes } from '../../src/testing/errors'
import { RULE_TAG } from '../../src/testing/kernel-faults'
import { virtualAddress } from '../../src/testing/virtual-address'
import { kernelSkip, until, useCluster } from '../helpers'

const skip = kernelSkip('test/kit/virtual-address.test.ts')
const cluster = useCluster({ standby: true, primaryHost: '127.0.67.2', standbyHost: '127.0.67.3', replicationFromOwnAddress: !skip })

const ourNatRules = (): string[] => execFileSync('iptables', ['-t', 'nat', '-S'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(`${RULE_TAG}:${process.pid}`))

async function serverOf(config: pg.ClientConfig): Promise<{ client: pg.Client; addr: string }> {
  const client = new pg.Client(config)
  await client.connect()
  const { rows } = await client.query('SELECT host(inet_server_addr()) AS addr')
  return { client, addr: rows[0].addr as string }
}

describe('virtualAddress() and replicationFromOwnAddress (root)', { skip }, () => {
  it('switchTo() moves new connections only: a session opened before stays where it was (conntrack)', async () => {
    const c = cluster.get()
    const [a, b] = c.servers
    const vip = await c.virtualAddress({ address: '127.0.67.10' })
    try {
      assert.equal(vip.target, a)
      const before = await serverOf({ ...c.config, host: vip.host, port: vip.port })
      assert.equal(before.addr, a.host)
      await vip.switchTo(b)
      assert.equal(vip.target, b)
      const afterSwitch = await serverOf({ ...c.config, host: vip.host, port: vip.port })
      assert.equal(afterSwitch.addr, b.host, 'a new connection reaches the new target')
      assert.equal((await before.client.query('SELECT host(inet_server_addr()) AS addr')).rows[0].addr, a.host, 'the open one is pinned')
      await before.client.end()
      await afterSwitch.client.end()
      assert.equal(ourNatRules().filter((l) => l.includes('127.0.67.10')).length, 1, 'one rule at a time, tagged')
    } finally {
      await vip.remove()
    }
    assert.equal(ourNatRules().filter((l) => l.includes('127.0.67.10')).length, 0, 'removed')
  })

  it('the standby streams from its own address, so the primary names a standby a client can reach', async () => {
    const c = cluster.get()
    await until(async () => (await c.primary.query("SELECT count(*)::int AS n FROM pg_stat_replication WHERE state = 'streaming'")).rows[0].n === 1, 'the standby streams')
    const { rows } = await c.primary.query<{ addr: string }>('SELECT host(client_addr) AS addr FROM pg_stat_replication')
    assert.deepEqual(rows.map((r) => r.addr), [c.servers[1].host])
  })

  it('bad arguments are ConfigErrors: a non-loopback address, a server\'s own address', async () => {
    const c = cluster.get()
    await assert.rejects(c.virtualAddress({ address: '10.1.2.3' }), (e: unknown) => e instanceof ConfigError && /loopback/.test((e as Error).message))
    await assert.rejects(c.virtualAddress({ address: c.servers[0].host }), (e: unknown) => e instanceof ConfigError && /a server's own address/.test((e as Error).message))
  })
})

describe('without root: coded errors, nothing half-built', () => {
  it('virtualAddress() and replicationFromOwnAddress throw PGG_KIT_KERNEL_FAULTS_UNAVAILABLE', async () => {
    const saved = process.env.PGG_UNPRIVILEGED
    process.env.PGG_UNPRIVILEGED = '1'
    try {
      const fake = [{ host: '127.0.67.20', port: 5432, role: 'primary' }] as unknown as Cluster['servers']
      await assert.rejects(virtualAddress(fake, { address: '127.0.67.21' }), (e: unknown) => e instanceof KitError && e.code === KitErrorCodes.KERNEL_FAULTS_UNAVAILABLE && /virtual address 127\.0\.67\.21/.test(e.message))
      await assert.rejects(startCluster({ standby: true, primaryHost: '127.0.67.22', standbyHost: '127.0.67.23', replicationFromOwnAddress: true }), (e: unknown) => e instanceof KitError && e.code === KitErrorCodes.KERNEL_FAULTS_UNAVAILABLE)
    } finally {
      if (saved === undefined) delete process.env.PGG_UNPRIVILEGED
      else process.env.PGG_UNPRIVILEGED = saved
    }
  })
})
