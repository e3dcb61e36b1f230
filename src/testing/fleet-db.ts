/**
 * The fleet's database servers, run inside the fleet's database namespace. A server process can only
 * listen on addresses of the namespace it runs in, and children inherit their parent's namespace; so this
 * small process is started there (`ip netns exec <db namespace> node fleet-db.js`) and runs an ordinary
 * kit cluster (startCluster) for the fleet, answering requests over the IPC channel. Admin work goes over
 * the servers' Unix sockets (filesystem paths, not namespaced).
 *
 * If the fleet's process goes away (the IPC channel closes), the cluster is stopped and this process exits;
 * if this process is killed outright, the next startCluster() in any process sweeps its data.
 */
import { type Cluster, type ClusterOptions, startCluster } from './cluster'

export interface FleetDbServer {
  name: string
  host: string
  port: number
  role: 'primary' | 'standby' | 'stopped'
}

export interface FleetDbInfo {
  servers: FleetDbServer[]
  user: string
  password: string
  database: string
}

export type FleetDbRequest =
  | { id: number; op: 'start'; options: ClusterOptions }
  | { id: number; op: 'promote'; server: string }
  | { id: number; op: 'caughtUp' }
  | { id: number; op: 'query'; server: string | null; sql: string; params?: unknown[] }
  | { id: number; op: 'stop' }

export type FleetDbReply = { id: number; ok: true; result: unknown } | { id: number; ok: false; message: string; code?: string }

let cluster: Cluster | undefined

function info(c: Cluster): FleetDbInfo {
  return { servers: c.servers.map((s) => ({ name: s.name, host: s.host, port: s.port, role: s.role })), user: c.user, password: c.password, database: c.database }
}

function server(c: Cluster, name: string): Cluster['servers'][number] {
  const s = c.servers.find((x) => x.name === name)
  if (!s) throw new Error(`no server named ${name}`)
  return s
}

async function handle(req: FleetDbRequest): Promise<unknown> {
  if (req.op === 'start') {
    cluster = await startCluster(req.options)
    return info(cluster)
  }
  const c = cluster
  if (!c) throw new Error('the fleet cluster is not started')
  switch (req.op) {
    case 'promote':
      await c.promote(server(c, req.server))
      return info(c)
    case 'caughtUp':
      await c.caughtUp()
      return info(c)
    case 'query':
      return (await (req.server === null ? c.primary : server(c, req.server)).query(req.sql, req.params)).rows
    case 'stop':
      await c.stop()
      cluster = undefined
      return null
  }
}

async function shutdown(): Promise<void> {
  await cluster?.stop().catch(() => {})
  process.exit(0)
}

if (process.env.PGG_FLEET_DB === '1' && process.send) {
  process.on('message', (req: FleetDbRequest) => {
    handle(req).then(
      (result) => process.send!({ id: req.id, ok: true, result } satisfies FleetDbReply),
      (err: Error & { code?: string }) => process.send!({ id: req.id, ok: false, message: err.message, code: err.code } satisfies FleetDbReply)
    )
  })
  process.on('disconnect', () => void shutdown())
  process.on('SIGTERM', () => void shutdown())
  process.on('SIGINT', () => void shutdown())
}
