/**
 * Probing a host on a separate monitoring connection (a new connection and `SELECT 1` under a short
 * deadline), in the spirit of the AWS JDBC wrapper's enhanced failure monitoring. It answers what the
 * kernel cannot: whether a host that keeps ACKing (a proxy, a frozen server process) still serves queries.
 *
 * Any answer from the server, even an error (too many connections, auth), means it is alive. Only silence
 * past the deadline or a network-level failure means it is not.
 *
 * The deadline respects the link: once the server's first byte arrives (after f ms), the probe may take
 * another SLOW_LINK_MULTIPLE x f to finish its login and SELECT 1 — a slow link (200-500 ms each way, SCRAM's
 * four round trips) passes, while a frozen server (no byte at all) or a proxy whose backend is gone (its
 * first bytes come at once, then nothing) still fails at the base deadline.
 */
import { isIP } from 'node:net'
import pg from 'pg'
import type { ProbeResult } from '../judge/kernel-rules'
import { clientConfigFor } from '../topology/connect'
import { closeOwn, rawSocketOf } from '../pg/internals'
import { ownClient } from '../pg/client-classes'

/** After the server's first byte at f ms, the probe gets base + this x f to finish. */
const SLOW_LINK_MULTIPLE = 8

export interface ProbeTarget {
  /** Remote endpoint key, "ip:port": what the pooled sockets are connected to. */
  endpoint: string
  ip: string
  port: number
  /** The host name the pool was configured with, for TLS server name checks. */
  configuredHost: string
  /**
   * A pooler answers at this endpoint: a login it accepts proves it alive. The query behind it waits for a
   * server connection, which is the pooler's own business (a server restart behind PgBouncer holds it for
   * server_login_retry): condemning the pooler for it would only add errors to the wait pg.Pool sits out.
   */
  pooler?: boolean
}

export async function probe(poolOptions: object, target: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
  const startedAt = Date.now()
  // No connectionTimeoutMillis: the deadline below is the only one (it grows on a slow link).
  const config = clientConfigFor(poolOptions, target.ip, target.port, {
    connectionTimeoutMillis: 0,
    keepAlive: false,
    application_name: 'pg-pool-guard probe',
  })
  const ssl = (config as { ssl?: unknown }).ssl
  if (ssl && typeof ssl === 'object' && isIP(target.configuredHost) === 0) {
    ;(config as { ssl?: unknown }).ssl = { servername: target.configuredHost, ...ssl }
  }
  const client = ownClient(pg, config)
  client.on('error', () => {})
  let timer: NodeJS.Timeout | undefined
  try {
    await new Promise<void>((resolve, reject) => {
      /** (Re)arms the deadline at `total` ms from the start. */
      const arm = (total: number): void => {
        clearTimeout(timer)
        timer = setTimeout(() => reject(new Error(`no answer within ${total} ms`)), total - (Date.now() - startedAt))
        timer.unref()
      }
      arm(timeoutMs)
      const connected = client.connect()
      const socket = rawSocketOf(client)
      socket?.unref() // the guard's own sockets never keep a process alive
      socket?.once('data', () => {
        arm(timeoutMs + SLOW_LINK_MULTIPLE * (Date.now() - startedAt))
      })
      connected.then(() => (target.pooler ? undefined : client.query('SELECT 1'))).then(() => resolve(), reject)
    }).finally(() => clearTimeout(timer))
    client.end().catch(() => {})
    return { endpoint: target.endpoint, alive: true, startedAt, finishedAt: Date.now() }
  } catch (err) {
    closeOwn(client, new Error('probe abandoned'))
    const e = err as Error & { code?: string }
    // An ErrorResponse is the server talking: alive, whatever it said.
    const alive = err instanceof pg.DatabaseError
    return { endpoint: target.endpoint, alive, startedAt, finishedAt: Date.now(), error: e.code ? `${e.code}: ${e.message}` : e.message }
  }
}
