/** Ports for test servers: one port free on several loopback addresses at once. */
import { createServer } from 'node:net'
import { KitError, KitErrorCodes } from './errors'

/** A port free on every given address right now. */
export async function freePort(hosts: string[]): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await listenOnce(hosts[0], 0)
    let free = true
    for (const h of hosts.slice(1)) {
      try {
        await listenOnce(h, port)
      } catch {
        free = false
        break
      }
    }
    if (free) return port
  }
  throw new KitError(KitErrorCodes.NO_FREE_PORT, `no port free on all of ${hosts.join(', ')} after 50 tries`)
}

function listenOnce(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(port, host, () => {
      const p = (srv.address() as { port: number }).port
      srv.close(() => resolve(p))
    })
  })
}
