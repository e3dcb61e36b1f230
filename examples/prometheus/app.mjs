// An HTTP app on the guarded pool, exporting OpenTelemetry metrics to Prometheus. One command:
//
//   node examples/prometheus/app.mjs
//
// Without DATABASE_URL it starts its own primary + streaming standby (pg-pool-guard/testing, embedded
// PostgreSQL). Endpoints: POST /orders, GET /orders, GET /guard (snapshot + topology), GET /healthz.
// Metrics: http://127.0.0.1:9464/metrics (METRICS_HOST, METRICS_PORT). Set LOAD=0 to stop the built-in order traffic.
// In a fleet (pg-pool-guard/testing startFleet, test/kernel/fleet.test.ts) each instance sets
// OTEL_RESOURCE_ATTRIBUTES=service.instance.id=...,cloud.availability_zone=...: the SDK's resource, and the
// guard's zone label (pg_pool_guard_client_zone) that examples/prometheus/fleet-alerts.yml compares.
// Prometheus: prometheus.yml next to this file scrapes it and loads alerts.yml (dual-region, split-brain
// exposure, eviction bursts, a guard that stopped passing, degraded hosts, lost replication), whose unit
// tests are alerts.test.yml (promtool test rules alerts.test.yml).
import http from 'node:http'
import pg from 'pg'
import { NodeSDK } from '@opentelemetry/sdk-node'
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus'

const httpPort = Number(process.env.PORT ?? 3000)
const metricsPort = Number(process.env.METRICS_PORT ?? 9464)
// The exporter listens on localhost unless told otherwise; a fleet instance is scraped on its own address.
const metricsHost = process.env.METRICS_HOST || undefined

// The SDK first is simplest; a pool created before it also starts reporting, at its guard's next pass
// (PoolMetrics.maybeBind), as happens when hoisted imports create pools before sdk.start().
const sdk = new NodeSDK({ serviceName: 'orders-app', metricReaders: [new PrometheusExporter({ host: metricsHost, port: metricsPort })] })
sdk.start()
const { Pool } = await import('pg-pool-guard')

let cluster
let connectionString = process.env.DATABASE_URL
let regions = process.env.REGIONS ? JSON.parse(process.env.REGIONS) : undefined
if (!connectionString) {
  const { startCluster } = await import('pg-pool-guard/testing')
  cluster = await startCluster({ standby: true, primaryHost: '127.0.0.70', standbyHost: '127.0.0.71' })
  const [a, b] = cluster.servers
  connectionString = `postgresql://${cluster.user}:${encodeURIComponent(cluster.password)}@${a.host}:${a.port},${b.host}:${b.port}/${cluster.database}?target_session_attrs=read-write`
  regions = { 'eu-west-1': [a.host], 'eu-central-1': [b.host] }
}

// The one-line swap: this was `new pg.Pool(...)`.
const pool = new Pool({ connectionString, max: 8, guard: { poolName: 'orders', regions } })
pool.on('error', (err) => console.error('idle client error:', err.message))
// A pool some other library created, left unguarded: the guard reports its sockets as "foreign".
const reports = new pg.Pool({ connectionString: connectionString.replace(/@([^:/]+:\d+),[^/]+\//, '@$1/').replace(/[?&]target_session_attrs=[^&]*/, ''), max: 2 })
reports.on('error', () => {})

await pool.query('CREATE TABLE IF NOT EXISTS orders (id bigserial PRIMARY KEY, item text NOT NULL, at timestamptz NOT NULL DEFAULT now())')

const json = (res, status, body) => {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body, null, 2))
}
const server = http.createServer(async (req, res) => {
  try {
    if (req.method === 'POST' && req.url === '/orders') {
      const { rows } = await pool.query('INSERT INTO orders (item) VALUES ($1) RETURNING id, host(inet_server_addr()) AS server', ['widget'])
      return json(res, 201, rows[0])
    }
    if (req.method === 'GET' && req.url === '/orders') {
      const { rows } = await reports.query('SELECT count(*)::int AS orders FROM orders')
      return json(res, 200, rows[0])
    }
    if (req.url === '/guard') return json(res, 200, { topology: pool.guard.topology(), sockets: pool.guard.snapshot() })
    if (req.url === '/healthz') return json(res, 200, { ok: true, primary: pool.guard.topology().primary })
    json(res, 404, { error: 'not found' })
  } catch (err) {
    json(res, 503, { error: err.message, code: err.code })
  }
})
server.listen(httpPort, '127.0.0.1', () => {
  console.log(`orders app on http://127.0.0.1:${httpPort} (POST /orders, GET /orders, GET /guard)`)
  console.log(`metrics on http://${metricsHost ?? '127.0.0.1'}:${metricsPort}/metrics`)
})

// Built-in traffic so the dashboards move: 4 writers, and a report now and then.
let stopping = false
if (process.env.LOAD !== '0') {
  for (let w = 0; w < 4; w++) {
    ;(async () => {
      while (!stopping) {
        await pool.query('INSERT INTO orders (item) VALUES ($1)', [`load-${w}`]).catch(() => {})
        await new Promise((r) => setTimeout(r, 20))
      }
    })()
  }
  setInterval(() => reports.query('SELECT count(*) FROM orders').catch(() => {}), 1000).unref()
}

const shutdown = async () => {
  if (stopping) return
  stopping = true
  server.close()
  await Promise.allSettled([pool.end(), reports.end()])
  await sdk.shutdown().catch(() => {})
  await cluster?.stop()
  process.exit(0)
}
process.on('SIGINT', shutdown)
process.on('SIGTERM', shutdown)
