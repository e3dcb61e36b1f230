/**
 * The names of the verdicts, and nothing else (a leaf: errors.ts and judge/ both read it). What each one
 * means and does is the verdict table, src/judge/verdicts.ts.
 */
export type KernelVerdictKind = 'zombie-unacked' | 'zombie-keepalive' | 'host-dead' | 'peer-closed' | 'vanished' | 'checkout-distrusted'
export type ProbeVerdictKind = 'host-unresponsive'
export type TopologyVerdictKind = 'fenced' | 'stale-dns' | 'wrong-role' | 'dual-region' | 'rerouted'
export type LifecycleVerdictKind = 'fatal-error' | 'server-going-away' | 'connect-timeout'
/** Every reason the guard evicts a connection for. */
export type VerdictKind = KernelVerdictKind | ProbeVerdictKind | TopologyVerdictKind | LifecycleVerdictKind
