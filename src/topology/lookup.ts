/**
 * The guard's `lookup` hook (a resolver of its own, as pg-pool's users pass a `lookup` to net.connect), checked
 * and used the same way by the connect path (connect.ts: a stream factory for pg) and the DNS loop
 * (topology.ts), so both see the same answers.
 */
import type { Socket } from 'node:net'
import { isIP } from 'node:net'
import { ConfigError } from '../errors'

/**
 * What the guard's `lookup` hook answered for `hostname`, checked: an array of IP address strings. A hook
 * that breaks the contract (resolves to something else, rejects with a non-Error, throws) gets a coded
 * error instead of a TypeError thrown where nobody catches it. Used by the connect path (below) and the
 * DNS loop (topology/topology.ts).
 */
export async function callLookup(lookup: (hostname: string) => unknown, hostname: string): Promise<string[]> {
  let answer: unknown
  try {
    answer = await lookup(hostname)
  } catch (err) {
    if (err instanceof Error) throw err
    throw new ConfigError(`guard.lookup rejected for ${hostname} with ${describe(err)}, not an Error`)
  }
  if (!Array.isArray(answer)) {
    throw new ConfigError(`guard.lookup resolved to ${describe(answer)} for ${hostname}; it must resolve to an array of IP addresses`)
  }
  answer.forEach((a, i) => {
    if (typeof a !== 'string' || isIP(a) === 0) {
      throw new ConfigError(`guard.lookup resolved ${hostname} to ${describe(a)} at [${i}]; it must resolve to an array of IP addresses`)
    }
  })
  return answer as string[]
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return String(v)
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}…` : v)
  if (typeof v === 'object') return Array.isArray(v) ? 'an array' : `an object (${Object.prototype.toString.call(v)})`
  return `${typeof v} ${String(v)}`
}

/**
 * A stream factory for pg whose sockets resolve host names through `lookup` (the guard's resolver hook),
 * so that pooled connections and the stale-DNS check see the same answers. Whatever the hook does, the
 * socket's callback is called exactly once, so the connect (and the query waiting on it) settles.
 */
export function lookupStream(lookup: (hostname: string) => Promise<string[]>): () => Socket {
  type LookupCallback = (err: Error | null, address?: string | { address: string; family: number }[], family?: number) => void
  const nodeLookup = (hostname: string, options: { all?: boolean; family?: number }, cb: LookupCallback): void => {
    callLookup(lookup, hostname).then(
      (addrs) => {
        const all = addrs.map((address) => ({ address, family: isIP(address) }))
        if (all.length === 0) return cb(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }))
        if (options.all) cb(null, all)
        else cb(null, all[0].address, all[0].family)
      },
      (err: Error) => cb(err)
    )
  }
  return () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const net = require('node:net') as typeof import('node:net')
    const socket = new net.Socket()
    const connect = socket.connect.bind(socket) as (...args: unknown[]) => Socket
    ;(socket as { connect: unknown }).connect = (port: unknown, host?: unknown, ...rest: unknown[]) =>
      typeof port === 'number' && typeof host === 'string' ? connect({ port, host, lookup: nodeLookup }) : connect(port, host, ...rest)
    return socket
  }
}
