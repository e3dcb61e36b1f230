/**
 * Real kernel faults on loopback addresses with iptables (root only): blackhole (DROP), loss (random DROP)
 * and reject (RST). Every rule carries the comment tag `pg-pool-guard:<pid>` and is removed by `remove()`,
 * on process exit, and by `sweepStaleRules()` when a previous run died before it could clean up.
 * Only loopback addresses (127.0.0.0/8, ::1) are accepted: the kit never touches real traffic.
 */
import { execFile, execFileSync } from 'node:child_process'
import { isIP } from 'node:net'
import { promisify } from 'node:util'
import { ConfigError } from '../errors'
import { KitError, KitErrorCodes } from './errors'
import { isAlive } from './process'

const execFileP = promisify(execFile)

export const RULE_TAG = 'pg-pool-guard'

export type Direction = 'to' | 'from' | 'both'

export interface FaultOptions {
  /** Only this TCP port of the address. @default every port */
  port?: number
  /** 'to' = packets to the address, 'from' = its replies. @default 'both' */
  direction?: Direction
}

export interface KernelFault {
  readonly description: string
  /** The iptables rule specs, as passed after `-I`/`-D` (in the `nat` table when `table` says so). */
  readonly rules: string[][]
  readonly table?: 'filter' | 'nat'
  /** Removes the rules; safe to call twice. */
  remove(): Promise<void>
}

/** Why kernel faults cannot run here, or null when they can. */
export function kernelFaultsUnavailable(): string | null {
  if (process.env.PGG_UNPRIVILEGED === '1') return 'PGG_UNPRIVILEGED=1 asks to run as if not root'
  if (process.platform !== 'linux') return `iptables faults need Linux, this is ${process.platform}`
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'iptables faults need root'
  try {
    execFileSync('iptables', ['-S', 'INPUT'], { stdio: 'pipe' })
  } catch (err) {
    return `iptables is not usable (${(err as Error).message.split('\n')[0]}); install it with apt-get install -y iptables`
  }
  return null
}

/** Every packet dropped: the host vanishes without a FIN or RST, like a cut link or a dead VM. */
export function blackhole(ip: string, options: FaultOptions = {}): Promise<KernelFault> {
  return install(ip, options, ['-j', 'DROP'], `blackhole ${target(ip, options)}`)
}

/** A fraction `probability` (0..1) of packets dropped at random. */
export function loss(ip: string, probability: number, options: FaultOptions = {}): Promise<KernelFault> {
  if (!(probability > 0 && probability < 1)) {
    throw new ConfigError(`loss probability must be in (0, 1), got ${probability}`)
  }
  return install(ip, options, ['-m', 'statistic', '--mode', 'random', '--probability', String(probability), '-j', 'DROP'], `${Math.round(probability * 100)} % loss ${target(ip, options)}`)
}

/** Connections refused or reset at once (TCP RST), like a host whose PostgreSQL is down. */
export function reject(ip: string, options: FaultOptions = {}): Promise<KernelFault> {
  return install(ip, options, ['-j', 'REJECT', '--reject-with', 'tcp-reset'], `reject ${target(ip, options)}`)
}

function target(ip: string, o: FaultOptions): string {
  return `${ip}${o.port ? `:${o.port}` : ''} (${o.direction ?? 'both'})`
}

const installed = new Set<KernelFault>()
let swept = false

async function install(ip: string, o: FaultOptions, action: string[], description: string): Promise<KernelFault> {
  const family = loopbackFamily(ip)
  const port = (flag: string): string[] => (o.port ? ['-p', 'tcp', flag, String(o.port)] : [])
  const dir = o.direction ?? 'both'
  const rules: string[][] = []
  if (dir !== 'from') rules.push(['INPUT', '-d', ip, ...port('--dport'), ...ruleTag(), ...action])
  if (dir !== 'to') rules.push(['INPUT', '-s', ip, ...port('--sport'), ...ruleTag(), ...action])
  return installRules(family, 'filter', rules, description)
}

/** 4 or 6 for a loopback address (127.0.0.0/8, ::1); anything else is refused: the kit never touches real traffic. */
export function loopbackFamily(ip: string): 4 | 6 {
  const family = isIP(ip)
  if (family === 0 || !(family === 4 ? ip.startsWith('127.') : ip === '::1')) {
    throw new ConfigError(`kernel faults only target loopback addresses (127.0.0.0/8, ::1), got ${ip}`)
  }
  return family as 4 | 6
}

/** The comment match every rule of this kit carries: `pg-pool-guard:<pid>`, what sweepStaleRules() looks for. */
export function ruleTag(): string[] {
  return ['-m', 'comment', '--comment', `${RULE_TAG}:${process.pid}`]
}

/**
 * Inserts tagged rules (`-I`, each spec starting with its chain) into `table`; removed by the handle, on
 * process exit, and by sweepStaleRules() after a crash. Used by the faults above and by virtualAddress().
 */
export async function installRules(family: 4 | 6, table: 'filter' | 'nat', rules: string[][], description: string, append = false): Promise<KernelFault> {
  const why = kernelFaultsUnavailable()
  if (why) throw new KitError(KitErrorCodes.KERNEL_FAULTS_UNAVAILABLE, `cannot install ${description}: ${why}`)
  // A run killed before its teardown (a test file timed out) leaves tagged rules behind: the first fault
  // of each process removes them, so one killed run cannot disturb the next.
  if (!swept) {
    swept = true
    sweepStaleRules()
  }
  const bin = family === 4 ? 'iptables' : 'ip6tables'
  const t = ['-t', table]
  const done: string[][] = []
  let removed = false
  const fault: KernelFault = {
    description,
    rules,
    table,
    async remove() {
      if (removed) return
      removed = true
      installed.delete(fault)
      for (const r of done) await execFileP(bin, [...t, '-D', ...r]).catch(() => {})
    },
  }
  installed.add(fault)
  try {
    for (const r of rules) {
      await execFileP(bin, [...t, append ? '-A' : '-I', ...r])
      done.push(r)
    }
  } catch (err) {
    await fault.remove()
    throw new KitError(KitErrorCodes.IPTABLES_FAILED, `could not install ${description}: ${(err as Error).message}`, { cause: err })
  }
  // remove() is async; on exit we can only run synchronous commands.
  ;(fault as { removeSync?: () => void }).removeSync = () => {
    for (const r of done) {
      try {
        execFileSync(bin, [...t, '-D', ...r], { stdio: 'ignore' })
      } catch {
        // already gone
      }
    }
  }
  return fault
}

process.once('exit', () => {
  for (const f of installed) (f as { removeSync?: () => void }).removeSync?.()
})

/**
 * Removes rules tagged by this kit whose process is gone (a run killed before its teardown). Returns how
 * many rules it removed.
 */
export function sweepStaleRules(): number {
  if (kernelFaultsUnavailable()) return 0
  let removedCount = 0
  for (const bin of ['iptables', 'ip6tables']) {
    for (const table of ['filter', 'nat']) {
      let text: string
      try {
        text = execFileSync(bin, ['-t', table, '-S'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      } catch {
        continue
      }
      for (const line of text.split('\n')) {
        const m = new RegExp(`--comment "?${RULE_TAG}:(\\d+)"?`).exec(line)
        if (!m || !line.startsWith('-A ')) continue
        if (isAlive(Number(m[1]))) continue // its owner will remove it (this process included)
        try {
          execFileSync(bin, ['-t', table, '-D', ...splitRule(line.slice(3))], { stdio: 'ignore' })
          removedCount++
        } catch {
          // raced with its owner
        }
      }
    }
  }
  return removedCount
}

/** Splits an `iptables -S` line into argv, honouring the quotes around comments. */
function splitRule(rule: string): string[] {
  const out: string[] = []
  for (const m of rule.matchAll(/"([^"]*)"|(\S+)/g)) out.push(m[1] ?? m[2])
  return out
}
