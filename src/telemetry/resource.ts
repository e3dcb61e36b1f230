/**
 * Where this process runs, for the fleet view (issue 21): the zone the guard's metrics carry as
 * pg_pool_guard.client.zone.
 *
 * The OpenTelemetry SDK has its own answer in its resource (cloud.availability_zone, cloud.region), but the
 * API a library sees (a MeterProvider) does not expose the resource, and Prometheus exporters put resource
 * attributes in `target_info` only — a PromQL rule comparing zones would need a join on every series. So
 * the guard carries the zone itself, and by default reads it where the SDK reads it from the environment:
 * OTEL_RESOURCE_ATTRIBUTES. One setting then fills both, and they cannot disagree.
 *
 * Read once per pool, at construction: nothing here runs per query or per collection.
 */

/** Resource attributes that name the failure domain, most specific first. */
const ZONE_KEYS = ['cloud.availability_zone', 'cloud.region'] as const

/**
 * OTEL_RESOURCE_ATTRIBUTES as the SDK reads it (the specification's "key1=value1,key2=value2", values
 * percent-encoded). A malformed pair is skipped, as the SDK's env detector does; never throws.
 */
export function parseResourceAttributes(text: string | undefined): Map<string, string> {
  const out = new Map<string, string>()
  if (!text) return out
  for (const pair of text.split(',')) {
    const i = pair.indexOf('=')
    if (i <= 0) continue
    const key = pair.slice(0, i).trim()
    let value = pair.slice(i + 1).trim()
    try {
      value = decodeURIComponent(value)
    } catch {
      continue // a stray '%': the SDK drops the pair too
    }
    if (key) out.set(key, value)
  }
  return out
}

/** The zone a pool reports: the `zone` option when given, else the resource's zone or region from the environment, else null. */
export function clientZone(option: string | null | undefined, env: NodeJS.ProcessEnv = process.env): string | null {
  if (option) return option
  const attrs = parseResourceAttributes(env.OTEL_RESOURCE_ATTRIBUTES)
  for (const key of ZONE_KEYS) {
    const v = attrs.get(key)
    if (v) return v
  }
  return null
}
