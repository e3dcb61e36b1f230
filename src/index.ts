/** pg-pool-guard: the public API, by name. Types are listed in ./types.ts. */
export { Pool, guard } from './pool/pool'
export { Guard } from './guard/guard'
export { GUARD_DEFAULTS } from './options'
export { VERDICTS } from './judge/verdicts'
export { INSTRUMENTATION_PG_POOL_VIEW } from './telemetry/views'
export {
  ErrorCodes,
  WarningCodes,
  PoolGuardError,
  ConfigError,
  ConnectionEvictedError,
  NoHostAvailableError,
  HostFencedError,
  HostDownError,
  WrongRoleError,
} from './errors'
export type * from './types'
