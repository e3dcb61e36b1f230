/**
 * Network namespaces, veth links and iptables rules for a fleet (root only). Every name carries the tag
 * `pgg-<pid>-` of the process that made it (namespaces, the one link in the root namespace, rule comments),
 * so what a crashed run left behind is found by the next one (`sweepStaleNetns`) and nothing of anyone
 * else's is ever touched. Interfaces and rules live inside the namespaces: deleting a namespace removes
 * them with it, and the peer end of each veth pair with them.
 */
import { execFile, execFileSync } from 'node:child_process'
import { promisify } from 'node:util'
import { KitError, KitErrorCodes } from './errors'
import { isAlive, signal } from './process'

const execFileP = promisify(execFile)

export const NETNS_TAG = 'pgg'
const TAGGED = new RegExp(`^${NETNS_TAG}-(\\d+)-`)

/** Why a fleet cannot be built here, or null when it can. */
export function netnsUnavailable(): string | null {
  if (process.env.PGG_UNPRIVILEGED === '1') return 'PGG_UNPRIVILEGED=1 asks to run as if not root'
  if (process.platform !== 'linux') return `network namespaces need Linux, this is ${process.platform}`
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'network namespaces need root'
  for (const [cmd, args, pkg] of [['ip', ['netns', 'list'], 'iproute2'], ['iptables', ['--version'], 'iptables']] as const) {
    try {
      execFileSync(cmd, args, { stdio: 'pipe' })
    } catch (err) {
      return `${cmd} is not usable (${(err as Error).message.split('\n')[0]}); install it with apt-get install -y ${pkg}`
    }
  }
  return null
}

/** A tagged name: `pgg-<pid>-<short>`. Interface names are limited to 15 bytes, so `short` is kept tiny there. */
export function tagged(short: string, pid = process.pid): string {
  return `${NETNS_TAG}-${pid}-${short}`
}

/** The iptables match that tags a rule as ours (`-m comment --comment pgg-<pid>`). */
export function ruleTag(pid = process.pid): string[] {
  return ['-m', 'comment', '--comment', `${NETNS_TAG}-${pid}`]
}

async function run(cmd: string, args: string[]): Promise<string> {
  try {
    return (await execFileP(cmd, args, { encoding: 'utf8' })).stdout
  } catch (err) {
    const e = err as { stderr?: string; message: string }
    throw new KitError(KitErrorCodes.NETNS_FAILED, `${cmd} ${args.join(' ')} failed: ${(e.stderr ?? '').trim() || e.message}`, { cause: err })
  }
}

/** `ip ...` in the root namespace, or with `-n ns` inside one. */
export function ip(args: string[], ns?: string): Promise<string> {
  return run('ip', ns ? ['-n', ns, ...args] : args)
}

/** A command run inside a namespace (`ip netns exec`). */
export function inNs(ns: string, cmd: string, args: string[]): Promise<string> {
  return run('ip', ['netns', 'exec', ns, cmd, ...args])
}

/** iptables inside a namespace; every rule given here must already carry ruleTag(). */
export function iptables(ns: string, args: string[]): Promise<string> {
  return inNs(ns, 'iptables', ['-w', ...args])
}

/** The namespaces and root-namespace links one process made: removed together, also at exit. */
export class NetnsLedger {
  readonly namespaces: string[] = []
  readonly rootLinks: string[] = []
  private removed = false

  async addNamespace(short: string): Promise<string> {
    const name = tagged(short)
    await run('ip', ['netns', 'add', name])
    this.namespaces.push(name)
    ledgers.add(this)
    // Loopback is down in a new namespace; services bound to 127.0.0.1 inside it need it.
    await ip(['link', 'set', 'lo', 'up'], name)
    return name
  }

  /** A veth pair from `a` (named `nameA`) to `b` (named `nameB`); `a` undefined is the root namespace. */
  async veth(a: string | undefined, nameA: string, b: string, nameB: string): Promise<void> {
    await ip(['link', 'add', nameA, 'type', 'veth', 'peer', 'name', nameB, 'netns', b], a)
    if (a === undefined) this.rootLinks.push(nameA)
    await ip(['link', 'set', nameA, 'up'], a)
    await ip(['link', 'set', nameB, 'up'], b)
  }

  /**
   * Deletes the namespaces (their links, addresses and rules go with them) and the root-namespace links.
   * Processes still inside keep a namespace alive until they exit; the name is gone at once. Synchronous,
   * so it can run from an exit handler. Safe to call twice.
   */
  removeSync(): void {
    if (this.removed) return
    this.removed = true
    ledgers.delete(this)
    for (const l of this.rootLinks) quiet('ip', ['link', 'del', l])
    for (const ns of this.namespaces.reverse()) quiet('ip', ['netns', 'del', ns])
  }
}

function quiet(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
  } catch {
    return ''
  }
}

const ledgers = new Set<NetnsLedger>()
process.once('exit', () => {
  for (const l of ledgers) l.removeSync()
})

/**
 * Removes namespaces (and root-namespace links) tagged by a process that is gone: a run killed before its
 * teardown. The processes still inside such a namespace were started by that run (its servers, apps,
 * Prometheus) and are killed first, so the namespace dies with its name. Returns how many it removed.
 */
export function sweepStaleNetns(): number {
  if (netnsUnavailable()) return 0
  let removed = 0
  for (const line of quiet('ip', ['netns', 'list']).split('\n')) {
    const name = line.split(' ')[0]
    const m = TAGGED.exec(name)
    if (!m || isAlive(Number(m[1]))) continue
    for (const pid of quiet('ip', ['netns', 'pids', name]).split('\n').filter(Boolean).map(Number)) signal(pid, 'SIGKILL')
    quiet('ip', ['netns', 'del', name])
    removed++
  }
  for (const line of quiet('ip', ['-o', 'link', 'show']).split('\n')) {
    const name = /^\d+: ([^:@]+)/.exec(line)?.[1]
    const m = name ? TAGGED.exec(name) : null
    if (!m || isAlive(Number(m[1]))) continue
    quiet('ip', ['link', 'del', name!])
    removed++
  }
  return removed
}
