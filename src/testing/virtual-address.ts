/**
 * A virtual address in front of the cluster, the way kube-proxy builds a Kubernetes Service and an L4 load
 * balancer or keepalived behaves for the client: connections to `address:port` are rewritten (iptables DNAT
 * in the nat table's OUTPUT chain) to one server. `switchTo(server)` moves the rewrite: new connections go
 * to the new server, while connections already open stay where they were (conntrack pins them) — exactly
 * what a failover behind a VIP does to a pool, and what a test of it needs.
 *
 * Root only (iptables), loopback addresses only; a coded KitError otherwise. The rules carry the kit's tag
 * and are removed by `remove()`, on process exit, and by sweepStaleRules() after a crash.
 */
import { ConfigError } from '../errors'
import type { PgServer } from './server'
import { installRules, type KernelFault, loopbackFamily, ruleTag } from './kernel-faults'

export interface VirtualAddressOptions {
  /** A loopback address no server listens on, e.g. '127.0.0.10'. */
  address: string
  /** The port clients dial. @default the server's port */
  port?: number
}

export interface VirtualAddress {
  readonly host: string
  readonly port: number
  /** The server new connections reach now. */
  readonly target: PgServer
  /** New connections go to `server` from now on; open ones stay where they are. */
  switchTo(server: PgServer): Promise<void>
  /** Removes the rewrite; safe to call twice. */
  remove(): Promise<void>
}

/** `servers`: the cluster's servers (a Cluster's `servers`), the first running primary is the initial target. */
export async function virtualAddress(servers: readonly PgServer[], options: VirtualAddressOptions): Promise<VirtualAddress> {
  const family = loopbackFamily(options.address)
  if (servers.some((s) => s.host === options.address)) {
    throw new ConfigError(`virtualAddress(): ${options.address} is a server's own address; give one no server listens on`)
  }
  const first = servers.find((s) => s.role === 'primary') ?? servers[0]
  if (!first) throw new ConfigError('virtualAddress() needs the cluster\'s servers')
  const port = options.port ?? first.port
  const rule = (to: PgServer): string[] => [
    'OUTPUT', '-d', options.address, '-p', 'tcp', '--dport', String(port), ...ruleTag(), '-j', 'DNAT', '--to-destination', `${to.host}:${to.port}`,
  ]
  const describe = (to: PgServer): string => `virtual address ${options.address}:${port} -> ${to.host}:${to.port}`
  let target = first
  let current: KernelFault = await installRules(family, 'nat', [rule(first)], describe(first))
  return {
    host: options.address,
    port,
    get target() {
      return target
    },
    async switchTo(server: PgServer) {
      // The new rule first (inserted above the old one), then the old one out: never a moment without.
      const next = await installRules(family, 'nat', [rule(server)], describe(server))
      await current.remove()
      current = next
      target = server
    },
    async remove() {
      await current.remove()
    },
  }
}
