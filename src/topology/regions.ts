/**
 * Regions: `guard.regions` maps a region name to the hosts and networks in it, e.g.
 * `{ 'eu-west-1': ['10.1.0.0/16', 'db-eu.internal'], 'us-east-1': ['10.2.0.0/16'] }`. A socket's region
 * is the first region listing its configured host name, else its remote IP (exact or CIDR).
 */
import { BlockList, isIP } from 'node:net'
import { ConfigError } from '../errors'
import { normalizeAddress } from '../kernel/proc-net-tcp'

export type RegionsConfig = Record<string, string[]>

export class Regions {
  private readonly names = new Map<string, string>()
  private readonly nets: { region: string; list: BlockList }[] = []

  constructor(config: RegionsConfig = {}) {
    for (const [region, entries] of Object.entries(config)) {
      if (!Array.isArray(entries)) throw new ConfigError(`guard.regions.${region} must be an array of hosts or CIDRs`)
      const list = new BlockList()
      for (const entry of entries) {
        const [addr, bits] = entry.split('/')
        const family = isIP(addr)
        if (family === 0) {
          if (bits !== undefined) throw new ConfigError(`guard.regions.${region}: '${entry}' is not a valid CIDR`)
          this.names.set(entry.toLowerCase(), region)
          continue
        }
        const type = family === 4 ? 'ipv4' : 'ipv6'
        const prefix = bits === undefined ? (family === 4 ? 32 : 128) : Number(bits)
        if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128)) {
          throw new ConfigError(`guard.regions.${region}: '${entry}' has an invalid prefix length`)
        }
        list.addSubnet(addr, prefix, type)
      }
      this.nets.push({ region, list })
    }
  }

  get configured(): boolean {
    return this.nets.length > 0
  }

  regionOf(configuredHost: string, ip: string | null): string | null {
    const byName = this.names.get(configuredHost.toLowerCase())
    if (byName) return byName
    for (const candidate of [ip, configuredHost]) {
      if (!candidate) continue
      const addr = normalizeAddress(candidate)
      const family = isIP(addr)
      if (family === 0) continue
      for (const { region, list } of this.nets) if (list.check(addr, family === 4 ? 'ipv4' : 'ipv6')) return region
    }
    return null
  }
}
