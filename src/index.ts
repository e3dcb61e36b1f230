export { Pool, guard } from './pool/pool'
export type { PoolConfig } from './pool/pool'
export { Guard } from './guard/guard'
export type { LeakReport, GuardEvents } from './guard/guard'
export type { ConnSnapshot, ConnState } from './guard/registry'
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
