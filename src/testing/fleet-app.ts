/**
 * The fleet's default app instance (startFleet without `app`): a guarded pool, a few writers, and the
 * OpenTelemetry SDK's Prometheus exporter on its own address — what examples/prometheus/app.mjs does,
 * without its HTTP API. Started by the kit inside the instance's network namespace.
 *
 * Environment (set by the kit): DATABASE_URL; METRICS_HOST (its own address) and METRICS_PORT (9464); WRITERS (4) and PAUSE_MS (20): each
 * writer inserts a row, pauses, repeats; OTEL_RESOURCE_ATTRIBUTES: service.instance.id and
 * cloud.availability_zone, which become the resource (target_info) and, through the guard's zone default,
 * pg_pool_guard.client.zone on every guard metric. Needs @opentelemetry/sdk-metrics and
 * @opentelemetry/exporter-prometheus (development dependencies of pg-pool-guard).
 */
import { Pool } from '../pool/pool'
import { parseResourceAttributes } from '../telemetry/resource'

export const FLEET_TABLE = 'pgg_fleet_writes'

async function main(): Promise<void> {
  const env = process.env
  const metricsPort = Number(env.METRICS_PORT ?? 9464)
  const writers = Number(env.WRITERS ?? 4)
  const pauseMs = Number(env.PAUSE_MS ?? 20)
  const attrs = Object.fromEntries(parseResourceAttributes(env.OTEL_RESOURCE_ATTRIBUTES))
  const id = attrs['service.instance.id'] ?? String(process.pid)

  const { MeterProvider } = require('@opentelemetry/sdk-metrics') as typeof import('@opentelemetry/sdk-metrics')
  const { PrometheusExporter } = require('@opentelemetry/exporter-prometheus') as typeof import('@opentelemetry/exporter-prometheus')
  const { resourceFromAttributes } = require('@opentelemetry/resources') as typeof import('@opentelemetry/resources')
  const exporter = new PrometheusExporter({ host: env.METRICS_HOST, port: metricsPort })
  const provider = new MeterProvider({ resource: resourceFromAttributes({ 'service.name': 'pg-pool-guard-fleet', ...attrs }), readers: [exporter] })

  const pool = new Pool({ connectionString: env.DATABASE_URL, max: writers + 2, guard: { poolName: env.POOL_NAME ?? 'orders', meterProvider: provider } })
  pool.on('error', () => {})
  let stopping = false
  let failures = 0
  const write = async (w: number): Promise<void> => {
    while (!stopping) {
      await pool.query(`INSERT INTO ${FLEET_TABLE} (instance, writer) VALUES ($1, $2)`, [id, w]).catch(() => {
        failures++
      })
      await new Promise((r) => setTimeout(r, pauseMs))
    }
  }
  const running = Array.from({ length: writers }, (_, w) => write(w))
  console.log(`fleet instance ${id}: metrics on :${metricsPort}, ${writers} writers`)
  const stop = async (): Promise<void> => {
    if (stopping) return
    stopping = true
    await Promise.race([Promise.all(running), new Promise((r) => setTimeout(r, 2000))])
    await pool.end().catch(() => {})
    await provider.shutdown().catch(() => {})
    console.log(`fleet instance ${id}: stopped (${failures} failed writes)`)
    process.exit(0)
  }
  process.on('SIGTERM', () => void stop())
  process.on('SIGINT', () => void stop())
}

if (process.env.PGG_FLEET_INSTANCE) {
  main().catch((err: Error) => {
    console.error(`fleet instance: ${err.message}`)
    process.exit(1)
  })
}
