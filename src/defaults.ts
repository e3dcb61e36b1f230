/**
 * The one shape of a default, shared by every defaults table — the guard's options (options.ts), host
 * health (judge/health-rules.ts), routing (judge/routing-rules.ts), replication (judge/replication-rules.ts):
 * the value, its unit, and why it is what it is. A leaf that imports nothing, so every folder may read it.
 */

export interface Default<T = number> {
  readonly value: T
  /** As the README writes it: 'ms', 'probes', 'fraction', ...; '' for a choice among names or an object. */
  readonly unit: string
  /** Why the value is what it is (the measurement, the limit or the trade-off behind it). */
  readonly why: string
}

/** A table of defaults: one row per key of `O`, none missing (extra keys are excess properties). */
export type DefaultsTable<O> = { readonly [K in keyof O]-?: Default<O[K]> }

/** The values of a table, under the same keys, in the same order. */
export function defaultValues<O>(table: { readonly [K in keyof O]: Default<O[K]> }): O {
  return Object.fromEntries(Object.entries(table).map(([k, row]) => [k, (row as Default<unknown>).value])) as O
}
