/**
 * Probing a host on a separate monitoring connection (a new connection and `SELECT 1` under a short
 * deadline), in the spirit of the AWS JDBC wrapper's enhanced failure monitoring. It answers what the
 * kernel cannot: whether a host that keeps ACKing (a proxy, a frozen server process) still serves queries.
 *
 * Any answer from the server, even an error (too many connections, auth), means it is alive. Only silence
 * past the deadline or a network-level failure means it is not.
 */
import { isIP } from 'node:net'
import pg from 'pg'
import type { ProbeResult } from '../judge/kernel-rules'
import { clientConfigFor, destroyInUse, rawSocketOf } from '../pg/adapter'
import { withDeadline } from '../util/time'

export interface ProbeTarget {
  /** Remote endpoint key, "ip:port": what the pooled sockets are connected to. */
  endpoint: string
  ip: string
  port: number
  /** The host name the pool was configured with, for TLS server name checks. */
  configuredHost: string
}

export async function probe(poolOptions: object, target: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
  const startedAt = Date.now()
  const config = clientConfigFor(poolOptions, target.ip, target.port, {
    connectionTimeoutMillis: timeoutMs,
    keepAlive: false,
    application_name: 'pg-pool-guard probe',
  })
  const ssl = (config as { ssl?: unknown }).ssl
  if (ssl && typeof ssl === 'object' && isIP(target.configuredHost) === 0) {
    ;(config as { ssl?: unknown }).ssl = { servername: target.configuredHost, ...ssl }
  }
  const client = new pg.Client(config as pg.ClientConfig)
  client.on('error', () => {})
  try {
    await withDeadline(() => {
      const connected = client.connect()
      rawSocketOf(client)?.unref() // the guard's own sockets never keep a process alive
      return connected.then(() => client.query('SELECT 1'))
    }, timeoutMs)
    client.end().catch(() => {})
    return { endpoint: target.endpoint, alive: true, startedAt, finishedAt: Date.now() }
  } catch (err) {
    destroyInUse(client, new Error('probe abandoned'))
    const e = err as Error & { code?: string }
    // An ErrorResponse is the server talking: alive, whatever it said.
    const alive = err instanceof pg.DatabaseError
    return { endpoint: target.endpoint, alive, startedAt, finishedAt: Date.now(), error: e.code ? `${e.code}: ${e.message}` : e.message }
  }
}
