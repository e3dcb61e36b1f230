/**
 * A userspace TCP proxy with toxics, in the spirit of toxiproxy: no privileges needed. Point a pool at the
 * proxy instead of the server, then add and remove toxics while the test runs:
 *
 *   const proxy = await faultProxy({ host: '127.0.0.2', port: 5432 })
 *   const pool = new Pool({ host: proxy.host, port: proxy.port, ... })
 *   const hole = proxy.add('blackhole', { direction: 'downstream' })
 *   ...
 *   proxy.remove(hole)
 *
 * Toxics act on open links and on new ones. Chunks flow through the toxics of their direction in order,
 * one at a time per direction, so ordering is kept; with no toxic a chunk is forwarded at once.
 */
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net'
import { ConfigError } from '../errors'
import { KitError, KitErrorCodes } from './errors'
import { TOXICS, type ToxicTypes } from './toxics'
import type { Direction, Link, Toxic } from './toxics/toxic'

export interface ProxyOptions {
  /** Address to listen on. @default '127.0.0.1' */
  listenHost?: string
  /** @default 0 (any free port) */
  listenPort?: number
  /** Random source for toxicity draws (seed it for reproducible tests). @default Math.random */
  random?: () => number
}

class ProxyLink implements Link {
  closed = false
  constructor(
    readonly id: number,
    readonly client: Socket,
    readonly server: Socket
  ) {}

  reset(): void {
    if (this.closed) return
    this.closed = true
    this.client.resetAndDestroy()
    this.server.destroy()
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    this.client.end()
    this.server.end()
  }
}

export class FaultProxy {
  readonly links = new Set<ProxyLink>()
  private toxics: Toxic[] = []
  private server: Server | undefined
  private nextId = 1
  private readonly random: () => number

  constructor(
    readonly target: { host: string; port: number },
    private readonly options: ProxyOptions = {}
  ) {
    this.random = options.random ?? Math.random
  }

  get host(): string {
    return this.options.listenHost ?? '127.0.0.1'
  }

  get port(): number {
    const a = this.server?.address()
    if (!a || typeof a === 'string') throw new KitError(KitErrorCodes.PROXY_NOT_LISTENING, `the proxy in front of ${this.target.host}:${this.target.port} is not listening (start() not called, or stop() was)`)
    return a.port
  }

  async start(): Promise<this> {
    const server = createServer((client) => this.accept(client))
    this.server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.options.listenPort ?? 0, this.host, () => resolve())
    })
    return this
  }

  /** Adds a toxic by name; it acts on open links at once and on every new one. */
  add<K extends keyof ToxicTypes>(type: K, options: ToxicTypes[K]): Toxic {
    const Ctor = TOXICS[type] as new (o: ToxicTypes[K]) => Toxic
    if (!Ctor) throw new ConfigError(`unknown toxic '${String(type)}'; known: ${Object.keys(TOXICS).join(', ')}`)
    const toxic = new Ctor(options)
    this.toxics.push(toxic)
    for (const link of this.links) if (toxic.appliesTo(link, this.random)) toxic.attach(link)
    return toxic
  }

  /** Removes a toxic (or every toxic of a type); data flows again, what it dropped stays lost. */
  remove(toxic: Toxic | keyof ToxicTypes): void {
    const gone = this.toxics.filter((t) => t === toxic || t.type === toxic)
    this.toxics = this.toxics.filter((t) => !gone.includes(t))
    for (const t of gone) for (const link of this.links) t.detach(link)
  }

  /** Removes every toxic. */
  clear(): void {
    for (const t of [...this.toxics]) this.remove(t)
  }

  /** Stops listening and closes every link. */
  async stop(): Promise<void> {
    this.clear()
    for (const link of this.links) link.reset()
    const server = this.server
    this.server = undefined
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  private accept(client: Socket): void {
    client.pause()
    const server = netConnect(this.target.port, this.target.host)
    const link = new ProxyLink(this.nextId++, client, server)
    this.links.add(link)
    const drop = (): void => {
      if (!this.links.delete(link)) return
      for (const t of this.toxics) t.detach(link)
      link.closed = true
      client.destroy()
      server.destroy()
    }
    client.on('error', drop)
    server.on('error', drop) // also: the upstream connect failed
    server.once('connect', () => {
      for (const t of this.toxics) if (t.appliesTo(link, this.random)) t.attach(link)
      // A side that closed is passed on only once its pump has delivered what it had (slow-close).
      const up = this.pump(link, client, server, 'upstream')
      const down = this.pump(link, server, client, 'downstream')
      client.on('close', () => void up.then(drop))
      server.on('close', () => void down.then(drop))
      client.resume()
    })
  }

  /** Moves chunks from `from` to `to` through the toxics of `direction`, one at a time; resolves when `from` is done. */
  private pump(link: ProxyLink, from: Socket, to: Socket, direction: Direction): Promise<void> {
    const queue: Buffer[] = []
    let busy = false
    let ended = false
    let done!: () => void
    const finished = new Promise<void>((r) => (done = r))
    from.once('close', () => {
      if (!ended) done() // destroyed without an end: nothing more to deliver
    })
    const active = (): Toxic[] => this.toxics.filter((t) => t.direction === direction && t.appliesTo(link, this.random))
    const run = async (): Promise<void> => {
      if (busy) return
      busy = true
      from.pause()
      while (queue.length > 0) {
        let chunk: Buffer | null = queue.shift()!
        for (const t of active()) {
          chunk = await t.pipe(chunk, link)
          if (chunk === null) break
        }
        if (chunk !== null && !to.destroyed && !link.closed) to.write(chunk)
      }
      busy = false
      if (ended) return finish()
      if (!from.destroyed) from.resume()
    }
    const finish = async (): Promise<void> => {
      for (const t of active()) await t.beforeClose(link)
      if (!to.destroyed) to.end()
      done()
    }
    from.on('data', (chunk: Buffer) => {
      if (!busy && active().length === 0) {
        if (!link.closed) to.write(chunk)
        return
      }
      queue.push(chunk)
      void run()
    })
    from.on('end', () => {
      ended = true
      if (!busy) void finish()
    })
    return finished
  }
}

/** Starts a proxy in front of `target`. */
export function faultProxy(target: { host: string; port: number }, options?: ProxyOptions): Promise<FaultProxy> {
  return new FaultProxy(target, options).start()
}
