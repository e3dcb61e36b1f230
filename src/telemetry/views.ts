/** Ready-made OpenTelemetry Views (plain objects: no @opentelemetry types in the public .d.ts). */

/**
 * A View (sdk-metrics ViewOptions) dropping instrumentation-pg's pool metrics, leaving its
 * db.client.operation.duration and ours. `type: 1` is AggregationType.DROP, the same value in sdk-metrics
 * 2.x and 3.x; spelled out so this module needs no SDK.
 *   new MeterProvider({ views: [INSTRUMENTATION_PG_POOL_VIEW], readers: [...] })
 */
export const INSTRUMENTATION_PG_POOL_VIEW = {
  meterName: '@opentelemetry/instrumentation-pg',
  instrumentName: 'db.client.connection.*',
  aggregation: { type: 1 as const },
} as const
