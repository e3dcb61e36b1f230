/**
 * Everything the `pg` module exports besides Pool and Client, passed through as the same objects (so
 * `pg.types.setTypeParser`, `pg.defaults` and `instanceof pg.DatabaseError` mean what they mean in pg):
 * with the guarded Pool and Client (pool/pool.ts, pool/client.ts) this makes pg-pool-guard a drop-in for
 * the whole module — `import pg from 'pg-pool-guard'`, Sequelize's `dialectModule`, TypeORM's `driver`.
 * `pg.native` is not passed through: its clients (libpq's) cannot be guarded.
 */
import pg from 'pg'

export const types: typeof pg.types = pg.types
export const defaults: typeof pg.defaults = pg.defaults
export const Connection: typeof pg.Connection = pg.Connection
export const Query: typeof pg.Query = pg.Query
export const DatabaseError: typeof pg.DatabaseError = pg.DatabaseError
export const Result: typeof pg.Result = pg.Result
export const TypeOverrides: typeof pg.TypeOverrides = pg.TypeOverrides
export const escapeIdentifier: typeof pg.escapeIdentifier = pg.escapeIdentifier
export const escapeLiteral: typeof pg.escapeLiteral = pg.escapeLiteral
/** pg's own helpers (prepareValue, normalizeQueryConfig, ...): untyped in @types/pg. */
export const utils: unknown = (pg as unknown as { utils?: unknown }).utils
