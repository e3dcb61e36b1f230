export { Pool, guard } from './pool/pool'
export type { PoolConfig } from './pool/pool'
export { Guard } from './guard/guard'
export type { LeakReport, GuardEvents, EvictionEvent } from './guard/guard'
export type { VerdictKind, HostSummary, ProbeResult } from './guard/classifier'
export type { ForeignSocket } from './guard/monitor'
export type { ConnSnapshot, ConnState, KernelSnapshot, VerdictRecord } from './guard/registry'
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
