/**
 * What the guard reads from its pool's options, once, at construction: the options as a config template
 * (password kept non-enumerable), the host list, the session attributes, the default pool name, the
 * connect deadline, and the config of a host's monitoring connection.
 */
import pg from 'pg'
import type { Client, Pool as PgPool } from 'pg'
import type { GuardOptions, ResolvedGuardOptions } from '../options'
import { clientConfigFor } from '../topology/connect'
import { lookupStream } from '../topology/lookup'
import { ownClient } from '../pg/client-classes'
import { type HostSpec, type LoadBalanceHosts, parseHosts, type ServerRole, type TargetSessionAttrs } from '../topology/hosts'

export interface PoolConfig {
  poolOptions: Record<string, unknown>
  hosts: HostSpec[]
  targetSessionAttrs: TargetSessionAttrs
  loadBalanceHosts: LoadBalanceHosts
  /** server.address:server.port/db.namespace. */
  defaultName: string
  /** How long a connection may stay 'connecting' (0: pg-pool's own connectionTimeoutMillis applies). */
  connectDeadlineMs: number
  monitorConfig(spec: HostSpec): Record<string, unknown>
}

export function readPoolConfig(pool: PgPool, given: GuardOptions | undefined, o: ResolvedGuardOptions): PoolConfig {
  const poolOptions = baseOptionsOf(pool)
  const parsed = parseHosts(poolOptions)
  if (parsed.connectionString !== undefined) poolOptions.connectionString = parsed.connectionString
  const hosts = parsed.hosts.length > 0 ? parsed.hosts : [defaultHost(poolOptions)]
  // A connect has a deadline: per attempt with several hosts (the next one gets its turn), else ours
  // unless pg-pool's own connectionTimeoutMillis is set.
  const pgConnectTimeout = Number((poolOptions as { connectionTimeoutMillis?: unknown }).connectionTimeoutMillis) || 0
  return {
    poolOptions,
    hosts,
    targetSessionAttrs: given?.targetSessionAttrs ?? parsed.targetSessionAttrs ?? 'any',
    loadBalanceHosts: given?.loadBalanceHosts ?? parsed.loadBalanceHosts ?? 'disable',
    defaultName: defaultPoolName(hosts, poolOptions),
    connectDeadlineMs: hosts.length > 1 ? o.connectAttemptTimeoutMs : pgConnectTimeout > 0 ? 0 : o.connectTimeoutMs,
    monitorConfig: (spec) =>
      clientConfigFor(poolOptions, spec.host, spec.port, {
        connectionTimeoutMillis: o.probeTimeoutMs,
        keepAlive: false,
        application_name: 'pg-pool-guard monitor',
        ...(o.lookup && poolOptions.stream === undefined ? { stream: lookupStream(o.lookup) } : {}),
      }),
  }
}

/**
 * The pool's options as the guard uses them to build configs of its own (attempts, monitors, probes):
 * a copy keeping property descriptors (the password stays non-enumerable), without pg-pool's Client.
 */
function baseOptionsOf(pool: PgPool): Record<string, unknown> {
  const options = (pool as unknown as { options: object }).options
  const copy = Object.defineProperties({}, Object.getOwnPropertyDescriptors(options)) as Record<string, unknown>
  delete copy.Client
  return copy
}

/** The host pg would use when none is configured (PGHOST, defaults), read from a client that never connects. */
function defaultHost(options: Record<string, unknown>): HostSpec {
  const c = ownClient(pg, options)
  return { host: c.host, port: c.port }
}

/** server.address:server.port/db.namespace, as the semantic conventions suggest; no credentials. */
function defaultPoolName(hosts: HostSpec[], options: Record<string, unknown>): string {
  let database = typeof options.database === 'string' ? options.database : undefined
  if (database === undefined) database = ownClient(pg, options).database ?? ''
  return `${hosts.map((h) => `${h.host}:${h.port}`).join(',')}/${database}`
}

/** PostgreSQL < 14 does not report in_hot_standby: ask. */
export async function queryRole(client: Client): Promise<ServerRole> {
  const { rows } = await client.query("SELECT pg_is_in_recovery() AS standby, current_setting('transaction_read_only') = 'on' AS ro")
  return { inHotStandby: rows[0].standby, readOnly: rows[0].ro }
}
