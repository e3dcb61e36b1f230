export { startCluster, Cluster, PgServer, freePort } from './cluster'
export type { ClusterOptions, ServerRole } from './cluster'
export { findBinaries } from './binaries'
export type { Binaries, BinariesChoice } from './binaries'
