/**
 * pg-pool-guard/testing: a failover test kit for applications' own test suites.
 * - startCluster: a real primary + streaming hot standby on loopback addresses; promote, stop, rejoin.
 * - faultProxy + toxics: a userspace TCP proxy (no privileges) with latency, bandwidth, blackhole,
 *   timeout, reset-peer and slow-close toxics, each with a direction and a toxicity.
 * - blackhole / loss / reject: real kernel faults with iptables on loopback addresses (root only), tagged
 *   and always removed.
 * - writeLoad: a write workload that records which server acknowledged every write, and when.
 * - startFleet: N app instances in M zones (network namespaces, root only) in front of a primary and its
 *   standby, each with its own path, and a real Prometheus scraping them all; cut a zone from a host, add
 *   loss on one instance's path, move one zone's VIP.
 * - KitError / KitErrorCodes: every run-time failure of the kit carries a PGG_KIT_* code; bad arguments are
 *   the library's ConfigError (PGG_CONFIG_INVALID).
 */
export { startCluster, sweepStaleClusters, Cluster, PgServer, freePort } from './cluster'
export type { ClusterOptions, ServerState } from './cluster'
export { findBinaries } from './binaries'
export type { Binaries, BinariesChoice } from './binaries'
export { faultProxy, FaultProxy } from './proxy'
export type { ProxyOptions } from './proxy'
export { TOXICS, Toxic, Latency, Bandwidth, Blackhole, Timeout, ResetPeer, SlowClose } from './toxics'
export type { ToxicTypes, ToxicOptions, LatencyOptions, BandwidthOptions, TimeoutOptions, ResetPeerOptions, SlowCloseOptions, Direction, Link } from './toxics'
export { blackhole, loss, reject, kernelFaultsUnavailable, sweepStaleRules, RULE_TAG } from './kernel-faults'
export { virtualAddress } from './virtual-address'
export type { VirtualAddress, VirtualAddressOptions } from './virtual-address'
export type { KernelFault, FaultOptions } from './kernel-faults'
export { writeLoad, WriteWorkload } from './workload'
export { startFleet, sweepStaleFleets, fleetUnavailable, Fleet } from './fleet'
export type { FleetOptions, FleetInstance, FleetZone, FleetFault } from './fleet'
export { PrometheusServer, prometheusBinary } from './prometheus'
export type { PrometheusOptions, PromSample, PromAlert } from './prometheus'
export { KitError, KitErrorCodes } from './errors'
export type { KitErrorCode } from './errors'
export type { Ack, WriteFailure, WorkloadOptions, WorkloadSummary } from './workload'
