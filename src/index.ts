export { Pool, guard } from './pool/pool'
export type { PoolConfig } from './pool/pool'
export { Guard } from './guard/guard'
export type { LeakReport, GuardEvents, EvictionEvent, TopologySnapshot } from './guard/guard'
export type { VerdictKind, HostSummary, ProbeResult } from './guard/classifier'
export type { ForeignSocket } from './guard/monitor'
export type { ConnSnapshot, ConnState, KernelSnapshot, VerdictRecord, EvictionReason } from './guard/registry'
export type { HostState, TopologyVerdictKind, Lookup } from './topology/topology'
export type { TargetSessionAttrs, LoadBalanceHosts, ServerRole, HostSpec } from './topology/hosts'
export type { RegionsConfig } from './topology/regions'
export { GUARD_DEFAULTS } from './options'
export type { GuardOptions, ResolvedGuardOptions } from './options'
export type { SocketOptionsReport } from './socket/harden'
export {
  ErrorCodes,
  PoolGuardError,
  ConfigError,
  ConnectionEvictedError,
  NoHostAvailableError,
  HostFencedError,
  WrongRoleError,
} from './errors'
export type { ErrorCode, HostAttempt } from './errors'
