/**
 * pg.Client outside any pool, guarded: the drop-in `Client` class, `guardClient(client)` for a client
 * something else built, and `guardAllClients()` for every `new pg.Client()` in the process (ORMs and job
 * queues that build their own). Each joins the process-wide standalone guard (guard/standalone.ts).
 */
import pg from 'pg'
import { ConfigError } from '../errors'
import { StandaloneGuard } from '../guard/standalone'
import { type GuardOptions, resolveGuardOptions } from '../options'
import { canSeeInto, type ClientClass } from '../pg/internals'
import { isGuardedClass, replaceClientClass, standaloneClientClass } from '../pg/client-classes'

/** Every standalone client's guard: guards(), guardOf(client), snapshot(), and their events. */
export const standalone = new StandaloneGuard()

export interface ClientConfig extends pg.ClientConfig {
  /** Options of the standalone guard for this client's server (the first client's options apply to all). */
  guard?: GuardOptions
}

const guardOptionsIn = (config: unknown): GuardOptions | undefined => (typeof config === 'object' && config !== null ? (config as ClientConfig).guard : undefined)
const join = (client: pg.Client, config: unknown): ReturnType<StandaloneGuard['join']> => standalone.join(client, guardOptionsIn(config), config)
/** A bad guard option throws when the client is built, before anything is tracked. */
const check = (config: unknown): void => void resolveGuardOptions(guardOptionsIn(config))

/** pg.Client, guarded: same constructor, methods and events; the config may carry `guard` options. */
export const Client = standaloneClientClass(pg.Client as unknown as ClientClass, join, check) as unknown as typeof pg.Client & (new (config?: string | ClientConfig) => pg.Client)
export type Client = pg.Client

/**
 * Guards a pg.Client that something else built (before or after its connect): hardened, tracked,
 * judged, and reported by `standalone`. Returns the client. A client already guarded is left as it is.
 */
export function guardClient<C extends pg.Client>(client: C, options?: GuardOptions): C {
  if (!canSeeInto(client)) throw new ConfigError('guardClient() needs a pg.Client (pg-native clients cannot be guarded)')
  resolveGuardOptions(options)
  if (standalone.guardOf(client) || isGuardedClass(client.constructor)) return client
  standalone.join(client, options)
  return client
}

/**
 * Makes every `new pg.Client()` in the process a guarded standalone client (pg.Pool is not affected: pg
 * binds its Pool to the original class). For libraries that build clients themselves and take no
 * driver option (pg-boss's LISTEN client, knex's default pool). `pgModule`: the pg copy to patch, if the
 * library has its own (see "Two copies of pg" in the README). Returns a function that undoes it.
 */
export function guardAllClients(pgModule: { Client: unknown } = pg): () => void {
  if (typeof pgModule?.Client !== 'function') throw new ConfigError('guardAllClients() needs the pg module')
  if (isGuardedClass(pgModule.Client)) return () => {}
  const module = pgModule as { Client: ClientClass }
  return replaceClientClass(module, standaloneClientClass(module.Client, join, check))
}
