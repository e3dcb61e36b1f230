/**
 * The guard's options: one table (GUARD_DEFAULTS_TABLE), a row per option with its default, unit, check
 * and the reason the value is what it is, in the shape every defaults table shares (./defaults); validated
 * at construction. Units are in the names. `??` everywhere: 0 is a real value.
 */
import { type Default, defaultValues } from './defaults'
import { ConfigError } from './errors'
import { LOAD_BALANCE_HOSTS, type LoadBalanceHosts, TARGET_SESSION_ATTRS, type TargetSessionAttrs } from './topology/hosts'
import type { RegionsConfig } from './topology/regions'

export interface GuardOptions {
  /**
   * Idle time before the kernel sends the first keepalive probe on a pooled socket. Whole seconds.
   * @default 5000
   */
  keepAliveIdleMs?: number
  /** Time between unanswered keepalive probes. Whole seconds. @default 1000 */
  keepAliveIntervalMs?: number
  /** Unanswered probes before the kernel itself drops the socket (ignored by Linux when userTimeoutMs is set). @default 5 */
  keepAliveCount?: number
  /** TCP_USER_TIMEOUT: the kernel drops a socket whose sent data stays unacknowledged this long. 0 = unset. @default 30000 */
  userTimeoutMs?: number
  /** How often the guard samples TCP_INFO of every pooled socket. 0 turns the kernel checks off. @default 250 */
  checkIntervalMs?: number
  /** How often it reads /proc/net/tcp{,6} for the cross-check and the process-wide view. @default 30000 */
  procScanIntervalMs?: number
  /** No ACK for this long with data outstanding (or two keepalive probes unanswered) is a stall. @default 1000 */
  stallMs?: number
  /** RTO retransmissions a stalled socket must show (one more when it is the only active socket to its host). @default 2 */
  minRetransmits?: number
  /** A stalled socket is evicted after this long even while other sockets to its host progress. @default 30000 */
  stallHardLimitMs?: number
  /** A query waiting this long with no data and no kernel evidence triggers a probe of its host. @default 1000 */
  probeAfterMs?: number
  /**
   * Deadline for a probe (new connection + SELECT 1), at least; a host whose logins take longer (a slow or
   * distant link) gets 4 times its measured login time. @default 1500
   */
  probeTimeoutMs?: number
  /** At most one probe per host per this interval (kernel suspicion may probe sooner, after stallMs). @default 5000 */
  probeIntervalMs?: number
  /** CLOSE_WAIT or a vanished socket must persist this long before the guard acts (pg usually acts first). @default 500 */
  graceMs?: number
  /** Warn once, with the acquiring stack, when a client is held longer than this. 0 = off. @default 0 */
  leakDetectionThresholdMs?: number
  /** Each client's maxLifetimeSeconds is shortened by up to this fraction, at random, so a pool never expires at once. @default 0.1 */
  maxLifetimeJitter?: number
  /** Keep at least this many idle clients open (never beyond `max`), opening them in the background. @default 0 */
  minIdle?: number
  /**
   * Before an idle client is handed out, one TCP_INFO sample of its socket (no round trip): a socket the
   * kernel already distrusts (not ESTABLISHED, keepalive probes unanswered, data unacknowledged) is evicted
   * and the caller gets the next idle client or a new connection. @default true
   */
  checkoutCheck?: boolean
  /** Only clients idle at least this long are checked (a client released a moment ago has had no time to die). 0: every one. @default 100 */
  checkoutCheckIdleMs?: number
  /**
   * libpq's target_session_attrs: any, read-write, read-only, primary, standby, prefer-standby. Also read
   * from the connection string. @default 'any'
   */
  targetSessionAttrs?: TargetSessionAttrs
  /** libpq's load_balance_hosts: 'disable' (list order) or 'random'. @default 'disable' */
  loadBalanceHosts?: LoadBalanceHosts
  /** Region name -> hosts, IPs and CIDRs in it. @default {} */
  regions?: RegionsConfig
  /**
   * Resolves a host name to its addresses; used for new connections and to re-resolve names (stale DNS).
   * @default dns.lookup with all: true
   */
  lookup?: ((hostname: string) => Promise<string[]>) | null
  /** How often each configured host's role and timeline are polled (several hosts or a role requirement). 0 = off. @default 500 */
  topologyIntervalMs?: number
  /**
   * A replication link (a standby's walreceiver, a primary's standbys) bad on every monitor reading this
   * long is reported lost: a 'replication' event and pg_pool_guard.replication.state. Never evicts. @default 3000
   */
  replicationLostMs?: number
  /** How often host names are re-resolved (±20 % jitter), and at once on suspicion. 0 = off. @default 1000 */
  dnsIntervalMs?: number
  /**
   * How often each configured address the pool holds sockets to is checked on a fresh connection (a login
   * and one identity query, ±20 % jitter): behind a VIP, a load balancer or a Kubernetes Service, where the
   * address leads now. Skipped while the pool's own logins there are that recent. 0 = off. @default 2000
   */
  addressCheckIntervalMs?: number
  /**
   * Learn a primary's standbys from pg_stat_replication (their addresses, its port) and watch each one for a
   * promotion (a session kept in a bounded wait): the old primary is fenced the moment a standby is promoted,
   * also when the pool reaches the primary only through a VIP. Never connected to by the pool itself.
   * @default true with one configured host, else false (list the standbys as hosts instead)
   */
  discoverStandbys?: boolean | null
  /** Evict sockets outside the primary's region. @default true with regions and targetSessionAttrs read-write or primary */
  singleRegion?: boolean | null
  /**
   * In-doubt writes can be resolved: each session learns its transaction's id inside a block (one more
   * statement written behind the first write of a transaction, no round trip of its own), and an eviction
   * error whose outcome is 'unknown' gets resolveOutcome(). Evicted sessions left in a transaction block on
   * their server are ended once it answers. @default false
   */
  resolveInDoubt?: boolean
  /** In-use sockets condemned by topology (fenced, wrong-role, stale-dns, dual-region): 'destroy' now, or retire on 'release'. @default 'destroy' */
  topologyEvictInUse?: 'destroy' | 'release'
  /** With several hosts, one connection attempt may take this long before the next host is tried. @default 3000 */
  connectAttemptTimeoutMs?: number
  /**
   * With one host: a connection attempt (TCP, TLS, startup, authentication) may take this long, unless
   * pg's own `connectionTimeoutMillis` is set (then that applies). pg has no default. @default 10000
   */
  connectTimeoutMs?: number
  /** While a host is down, it is probed this often (a new connection + SELECT 1) to see it answer again. @default 500 */
  recoveryIntervalMs?: number
  /**
   * When every host a new connection could go to is down, it waits this long for one to answer again, then
   * fails with PGG_HOST_DOWN (or PGG_NO_HOST_AVAILABLE). 0 fails at once; raise it to ride out short
   * outages (as HikariCP's connectionTimeout does). @default 1000
   */
  waitForHostMs?: number
  /** db.client.connection.pool.name. @default 'host:port/database' (hosts joined by ','; '#2' appended if taken) */
  poolName?: string | null
  /** Where metrics go. @default the global MeterProvider of @opentelemetry/api (a no-op until an SDK registers one) */
  meterProvider?: MeterProviderLike | null
  /**
   * 'all': semantic-convention db.client.connection.* and the guard's pg_pool_guard.*; 'guard-only': leave
   * db.client.connection.* to another instrumentation; 'off'. @default 'all'
   */
  metrics?: 'all' | 'guard-only' | 'off'
  /**
   * The zone (or region, or datacenter) this process runs in: every pg_pool_guard.* metric carries it as
   * pg_pool_guard.client.zone, so fleet rules can tell a zone cut off from a host from a sick host.
   * @default cloud.availability_zone (else cloud.region) of OTEL_RESOURCE_ATTRIBUTES, else none
   */
  zone?: string | null
}

export type ResolvedGuardOptions = Required<GuardOptions>

/** The one method of an OpenTelemetry MeterProvider the guard calls; structural, so these types need no @opentelemetry/api. */
export interface MeterProviderLike {
  getMeter(name: string, version?: string, options?: { schemaUrl?: string }): unknown
}

type Check = (name: string, v: unknown) => void

/**
 * Upper bounds, each from the thing that consumes the value (issue "Every query settles"): a value past
 * them does not fail where it is given but later, far from the cause — setTimeout turns a delay of 2^31 ms
 * or more into 1 ms (a TimeoutOverflowWarning and a timer storm), and setsockopt's int argument
 * (TCP_USER_TIMEOUT) makes Buffer.writeInt32LE throw a RangeError at the first connect.
 */
export const LIMITS = {
  /** setTimeout's largest delay (a signed 32-bit ms count); past it Node uses 1 ms. */
  timerMs: 2 ** 31 - 1,
  /** TCP_USER_TIMEOUT is an int in ms (tcp_sock_set_user_timeout rejects negatives). */
  userTimeoutMs: 2 ** 31 - 1,
  /** MAX_TCP_KEEPIDLE and MAX_TCP_KEEPINTVL (include/net/tcp.h), in ms. */
  keepAliveMs: 32_767_000,
  /** MAX_TCP_KEEPCNT (include/net/tcp.h). */
  keepAliveCount: 127,
  /** tcpi_retransmits is a u8: a larger requirement could never be met. */
  retransmits: 255,
  /** A count of clients: anything near this is a typo, and it keeps the arithmetic exact. */
  clients: 2 ** 31 - 1,
} as const

const integer: Check = (name, v) => {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw new ConfigError(`guard.${name} must be a non-negative integer, got ${JSON.stringify(v)}`)
  }
}
const positiveInteger: Check = (name, v) => {
  integer(name, v)
  if ((v as number) < 1) throw new ConfigError(`guard.${name} must be at least 1, got ${String(v)}`)
}
/** `check`, then at most `max`; `why` names the limit in the message. */
const atMost = (check: Check, max: number, why: string): Check => (name, v) => {
  check(name, v)
  if ((v as number) > max) throw new ConfigError(`guard.${name} must be at most ${max} (${why}), got ${String(v)}`)
}
const wholeSeconds = (max: number, why: string): Check => (name, v) => {
  integer(name, v)
  if ((v as number) < 1000 || (v as number) % 1000 !== 0) {
    throw new ConfigError(`guard.${name} must be a whole number of seconds of at least 1000 (the kernel's unit), got ${String(v)}`)
  }
  if ((v as number) > max) throw new ConfigError(`guard.${name} must be at most ${max} (${why}), got ${String(v)}`)
}
const TIMER = "setTimeout's limit, 2^31-1 ms"
/** A timer delay: 0 allowed (off) or not, never past setTimeout's limit. */
const timerMs = atMost(integer, LIMITS.timerMs, TIMER)
const positiveTimerMs = atMost(positiveInteger, LIMITS.timerMs, TIMER)
const fraction: Check = (name, v) => {
  if (typeof v !== 'number' || !(v >= 0 && v < 1)) {
    throw new ConfigError(`guard.${name} must be a number in [0, 1), got ${JSON.stringify(v)}`)
  }
}

const oneOf = (values: readonly string[]): Check => (name, v) => {
  if (typeof v !== 'string' || !values.includes(v)) {
    throw new ConfigError(`guard.${name} must be one of ${values.join(', ')}, got ${JSON.stringify(v)}`)
  }
}
const fn: Check = (name, v) => {
  if (v !== null && typeof v !== 'function') throw new ConfigError(`guard.${name} must be a function, got ${typeof v}`)
}
const bool: Check = (name, v) => {
  if (v !== null && typeof v !== 'boolean') throw new ConfigError(`guard.${name} must be true or false, got ${JSON.stringify(v)}`)
}
const record: Check = (name, v) => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(`guard.${name} must be an object`)
}

/** One option: its default (the shape every defaults table shares), and the check a given value must pass. */
export interface OptionRow<T> extends Default<T> {
  /** Throws a ConfigError naming `guard.<name>` when a given value is not acceptable (bounds included). */
  readonly check: Check
  /**
   * The default as the README's options table shows it, when the value alone does not say it (null: decided
   * at construction from the pool's configuration or the environment). Starts with the value when there is one.
   */
  readonly shown?: string
}

/**
 * The options table: one row per option, each with its default, unit, check and the reason for the value.
 * Its type requires a row for every option; GUARD_DEFAULTS, the checks and the known keys are read from it,
 * and test/unit/options-table.test.ts holds the README's table to it. Adding an option is one row here
 * (and its JSDoc in GuardOptions).
 */
export const GUARD_DEFAULTS_TABLE: { readonly [K in keyof ResolvedGuardOptions]-?: OptionRow<ResolvedGuardOptions[K]> } = {
  keepAliveIdleMs: {
    value: 5_000, unit: 'ms (whole seconds)', check: wholeSeconds(LIMITS.keepAliveMs, 'MAX_TCP_KEEPIDLE, 32767 s'),
    why: 'an idle socket to a vanished host is probed after 5 s of silence, so the guard sees it within ~6 s instead of pg\'s 2 h 11 min. A probe is one empty ACK: negligible even for thousands of sockets',
  },
  keepAliveIntervalMs: {
    value: 1_000, unit: 'ms (whole seconds)', check: wholeSeconds(LIMITS.keepAliveMs, 'MAX_TCP_KEEPINTVL, 32767 s'),
    why: 'a probe that is not answered within a second on a LAN/region link is lost or the peer is gone; the guard waits for a second unanswered probe before acting, and only with host consensus',
  },
  keepAliveCount: {
    value: 5, unit: 'probes', check: atMost(positiveInteger, LIMITS.keepAliveCount, 'MAX_TCP_KEEPCNT'),
    why: 'with TCP_USER_TIMEOUT set Linux ignores it; kept for kernels/platforms where it applies',
  },
  userTimeoutMs: {
    value: 30_000, unit: 'ms', check: atMost(integer, LIMITS.userTimeoutMs, 'TCP_USER_TIMEOUT is a signed 32-bit int'),
    why: 'the kernel backstop for when the guard\'s own loop cannot run (a blocked event loop, or no FFI for TCP_INFO). With the 200 ms RTO floor, retransmissions go out at 0.2, 0.6, 1.4, 3.0, 6.2, 12.6 and 25.4 s: any limit in (12.6, 25.4] cuts a segment that lost 7 transmissions in a row, 30 s needs 8 (0.18^8 = 1e-6 per segment at 18 % loss). It also bounds keepalive (Linux applies it to probes)',
  },
  checkIntervalMs: {
    value: 250, unit: 'ms', check: timerMs,
    why: 'TCP_INFO costs ~2 us per socket; four passes a second put detection within a quarter second of the evidence at well under 0.1 % of a core for a pool of tens of sockets',
  },
  procScanIntervalMs: {
    value: 30_000, unit: 'ms', check: timerMs,
    why: 'reading /proc/net/tcp costs ~50-100 ms with 20k sockets on the host; it is the cross-check and the process-wide view, not the detector (that is TCP_INFO), so it runs rarely, and at once on suspicion. Without the FFI it becomes the detector and runs every second while queries are in flight. Whatever the setting, a scan that took X ms is not repeated for 3000·X ms: at most 0.03 % of a core',
  },
  stallMs: {
    value: 1_000, unit: 'ms', check: positiveTimerMs,
    why: 'a dead host shows two retransmissions 0.6 s after the fault and a 1 s silence shortly after; requiring both (this and minRetransmits), plus no progress on any other socket to the host, keeps a lossy link (whose other sockets still get ACKs) from being called dead',
  },
  minRetransmits: {
    value: 2, unit: 'retransmissions', check: atMost(positiveInteger, LIMITS.retransmits, 'tcpi_retransmits is 8 bits'),
    why: 'a dead host shows two retransmissions 0.6 s after the fault and a 1 s silence (stallMs) shortly after; requiring both, plus no progress on any other socket to the host, keeps a lossy link (whose other sockets still get ACKs) from being called dead',
  },
  stallHardLimitMs: {
    value: 30_000, unit: 'ms', check: positiveTimerMs,
    why: 'a single socket on a lossy link stuck this long has lost 8 transmissions in a row (see userTimeoutMs); evicting it is kinder than waiting for tcp_retries2\'s ~15 minutes',
  },
  probeAfterMs: {
    value: 1_000, unit: 'ms', check: positiveTimerMs,
    why: 'with probeTimeoutMs 1.5 s, a frozen server or a proxy that keeps ACKing is found ~2.5 s after a query stops getting data',
  },
  probeTimeoutMs: {
    value: 1_500, unit: 'ms', check: positiveTimerMs,
    why: 'survives one lost SYN (its retransmission goes out after 1 s), and with probeAfterMs 1 s finds a frozen server ~2.5 s after a query stops getting data; a host whose logins are slow (latency, SCRAM\'s four round trips) gets 4x its measured login time instead',
  },
  probeIntervalMs: {
    value: 5_000, unit: 'ms', check: positiveTimerMs,
    why: 'a slow healthy query costs one cheap probe per host per 5 s',
  },
  graceMs: {
    value: 500, unit: 'ms', check: timerMs,
    why: 'pg itself handles a FIN or RST within milliseconds; the guard only steps in when it did not',
  },
  leakDetectionThresholdMs: {
    value: 0, unit: 'ms', check: timerMs, shown: '0 (off)',
    why: 'off, as in HikariCP; capturing stacks on every acquire has a cost',
  },
  maxLifetimeJitter: {
    value: 0.1, unit: 'fraction', check: fraction,
    why: 'HikariCP subtracts up to 2.5 %; 10 % spreads a pool of 10 created together over a meaningful window even for short lifetimes',
  },
  minIdle: {
    value: 0, unit: 'clients', check: atMost(integer, LIMITS.clients, 'a count of clients, 2^31-1'),
    why: 'pg.Pool opens connections on demand; opt in to a warm pool',
  },
  checkoutCheck: {
    value: true, unit: 'boolean', check: bool,
    why: 'a socket the kernel already distrusts is caught before a query is written to it, for ~1.8 µs of CPU (one getsockopt and the rule; benchmarks/checkout.ts): 4 % of a pg.Pool checkout + SELECT 1 — over the hot-path budget if every checkout paid it, hence checkoutCheckIdleMs',
  },
  checkoutCheckIdleMs: {
    value: 100, unit: 'ms', check: timerMs,
    why: 'a busy pool\'s clients are idle for microseconds and skip the check (no clock read: the hot path\'s coarse clock), so the hot path does not pay its ~1.8 µs; a client idle 100 ms or more — where server idle timeouts, NAT drops and dead peers happen — is always checked',
  },
  targetSessionAttrs: {
    value: 'any', unit: '', check: oneOf(TARGET_SESSION_ATTRS), shown: "'any' (or the URL's target_session_attrs)",
    why: 'libpq\'s default, so a pool that asks for nothing connects where pg would; a connection string\'s target_session_attrs is read as libpq reads it',
  },
  loadBalanceHosts: {
    value: 'disable', unit: '', check: oneOf(LOAD_BALANCE_HOSTS), shown: "'disable' (or the URL's load_balance_hosts)",
    why: 'libpq\'s default: hosts are tried in the order given, so the first listed is preferred as it is by libpq; random spreads a fleet over its hosts',
  },
  regions: {
    value: {}, unit: '', check: record,
    why: 'which addresses share a region is the operator\'s knowledge, not something an address says; without it nothing is region-aware',
  },
  lookup: {
    value: null, unit: '(name) => Promise<string[]>', check: fn, shown: 'dns.lookup (all addresses)',
    why: 'dns.lookup is the resolver net.connect uses (the system\'s, with /etc/hosts), so names resolve as they do without the guard; all addresses, so a socket to any of them is not taken for stale',
  },
  topologyIntervalMs: {
    value: 500, unit: 'ms', check: timerMs,
    why: 'a promotion is seen within half a second (plus one round trip), so writes to the old primary stop well within the 1 s target; two cheap queries a second per host',
  },
  replicationLostMs: {
    value: 3_000, unit: 'ms', check: timerMs,
    why: 'six polls at the 500 ms topology interval, so one slow answer is not a loss, and a cut is still reported well before a failover tool decides to promote (they commonly wait 10-30 s). A walreceiver that errors out reconnects only after wal_retrieve_retry_interval (5 s): that is reported',
  },
  dnsIntervalMs: {
    value: 1_000, unit: 'ms', check: timerMs,
    why: 'RDS/Aurora flip the endpoint\'s DNS record at failover while the old primary may still accept writes; nothing else tells a pool given one name that it moved, so the name is asked every second (one lookup, usually answered from the resolver\'s cache). Jitter keeps a fleet from resolving in lockstep, and a kernel verdict re-resolves at once',
  },
  addressCheckIntervalMs: {
    value: 2_000, unit: 'ms', check: timerMs,
    why: 'behind a VIP or a load balancer a failover moves new connections only; the pool\'s own sessions stay on the old server. A check is a full login (SCRAM: ~3 ms of client CPU, 1-2 ms of server CPU here) plus one cheap query, so one every 2 s costs ~0.2 % of a core on each side per address. It is the fallback: where the standbys can be watched (discoverStandbys) the promotion itself fences the old primary; where they cannot, a check every 2 s bounds the window to ~2 s plus a login',
  },
  discoverStandbys: {
    value: null, unit: 'boolean', check: bool, shown: 'true with one configured host',
    why: 'a pool given one address (a VIP, a Service, a DNS name) cannot name the standbys itself; the primary can. One watch session per standby (one query a second, server-side sleeping) is what fencing at the promotion costs. With several hosts the list is the user\'s statement of the cluster',
  },
  singleRegion: {
    value: null, unit: 'boolean', check: bool, shown: 'with regions and read-write/primary',
    why: 'a writer pool (read-write or primary) with regions configured writes to one primary, and a socket outside its region is one a partition can leave on the wrong side; readers may read anywhere',
  },
  resolveInDoubt: {
    value: false, unit: 'boolean', check: bool,
    why: 'what it costs is one more small statement per transaction that writes (its answer rides on the first write\'s, no round trip) and a look at every message pg receives; the overhead benchmark measures it. Off, nothing of it runs',
  },
  topologyEvictInUse: {
    value: 'destroy', unit: '', check: oneOf(['destroy', 'release']),
    why: 'a write in flight on a fenced old primary is the write the bank lost; stopping it now is the point. \'release\' lets read-mostly pools finish what they are doing',
  },
  connectAttemptTimeoutMs: {
    value: 3_000, unit: 'ms', check: positiveTimerMs,
    why: 'libpq has no default (connect_timeout) and a blackholed host holds a SYN for over two minutes; with another host to try, three seconds is plenty for a TCP + TLS + auth handshake',
  },
  connectTimeoutMs: {
    value: 10_000, unit: 'ms', check: positiveTimerMs,
    why: 'pg waits forever for a connect by default (a silent host holds a SYN for minutes, a lost startup packet holds the attempt until the server\'s authentication_timeout, 60 s) and the attempt holds a pool slot meanwhile. 10 s covers a TLS + SCRAM login over a 500 ms-each-way link',
  },
  recoveryIntervalMs: {
    value: 500, unit: 'ms', check: positiveTimerMs,
    why: 'while a host is down new connections fail at once; a probe every half second sees it answer again within ~0.5 s of the network healing (a probe whose SYN was dropped is not waited for)',
  },
  waitForHostMs: {
    value: 1_000, unit: 'ms', check: timerMs,
    why: 'long enough for a recovery probe to see a healed host (a query issued just after the network heals then succeeds instead of failing), short enough that no caller is held past ~1 s by a host that stays down',
  },
  poolName: {
    value: null, unit: '', shown: 'host:port/database',
    check: (name, v) => {
      if (v !== null && (typeof v !== 'string' || v === '')) throw new ConfigError(`guard.${name} must be a non-empty string`)
    },
    why: 'server.address:server.port/db.namespace, as the semantic conventions suggest, and no credentials; \'#2\' is appended when two pools would share one, so their series never merge',
  },
  meterProvider: {
    value: null, unit: '', shown: 'global (@opentelemetry/api)',
    check: (name, v) => {
      if (v !== null && typeof (v as { getMeter?: unknown })?.getMeter !== 'function') throw new ConfigError(`guard.${name} must be an OpenTelemetry MeterProvider`)
    },
    why: 'where every instrumentation reports: metrics appear once the application registers an SDK (even after the pool was created) and cost a no-op call until then',
  },
  metrics: {
    value: 'all', unit: '', check: oneOf(['all', 'guard-only', 'off']),
    why: 'pg.Pool reports no pool metrics, so the semantic-convention db.client.connection.* come too; \'guard-only\' leaves them to another instrumentation that already reports them, so no series is doubled',
  },
  zone: {
    value: null, unit: '', shown: 'cloud.availability_zone (else cloud.region) of OTEL_RESOURCE_ATTRIBUTES, else none',
    check: (name, v) => {
      // A label value: one per process, so any short string keeps cardinality bounded; a long one is a mistake.
      if (v !== null && (typeof v !== 'string' || v === '' || v.length > 128)) throw new ConfigError(`guard.${name} must be a non-empty string of at most 128 characters`)
    },
    why: 'read where the OpenTelemetry SDK reads it (OTEL_RESOURCE_ATTRIBUTES), so the metrics\' zone and the resource\'s cannot disagree; a process with neither has no zone label, and fleet rules see one zone',
  },
}

/** The defaults, from the table (null: decided at construction; see each row's `shown`). */
export const GUARD_DEFAULTS: ResolvedGuardOptions = defaultValues(GUARD_DEFAULTS_TABLE)

export function resolveGuardOptions(input: GuardOptions | undefined): ResolvedGuardOptions {
  if (input !== undefined && (typeof input !== 'object' || input === null || Array.isArray(input))) {
    throw new ConfigError(`guard must be an object, got ${Array.isArray(input) ? 'an array' : JSON.stringify(input)}`)
  }
  const given = (input ?? {}) as Record<string, unknown>
  // Own keys against own keys: `'constructor' in GUARD_DEFAULTS_TABLE` is true through Object.prototype,
  // and a JSON `"__proto__"` key is an own key that plain property reads would not see.
  for (const key of Object.keys(given)) {
    if (!Object.prototype.hasOwnProperty.call(GUARD_DEFAULTS_TABLE, key)) {
      throw new ConfigError(`unknown guard option '${key}'; known: ${Object.keys(GUARD_DEFAULTS_TABLE).join(', ')}`)
    }
  }
  const out = { ...GUARD_DEFAULTS }
  for (const key of Object.keys(GUARD_DEFAULTS_TABLE) as (keyof ResolvedGuardOptions)[]) {
    const v = given[key]
    if (v === undefined) continue
    GUARD_DEFAULTS_TABLE[key].check(key, v)
    ;(out as Record<string, unknown>)[key] = v
  }
  return out
}
