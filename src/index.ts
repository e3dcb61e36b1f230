/** pg-pool-guard: the public API, by name. Types are listed in ./types.ts. */
export { Pool, guard } from './pool/pool'
export { Client, guardClient, guardAllClients, standalone } from './pool/client'
export { guardPgBoss } from './integrations/pg-boss'
export { types, defaults, Connection, Query, DatabaseError, Result, TypeOverrides, escapeIdentifier, escapeLiteral, utils } from './pg/module'
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
