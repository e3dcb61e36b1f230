#!/usr/bin/env node
/**
 * The pg-pool-guard command line:
 *   pg-pool-guard demo [--short] [--json] [--mode kernel|toxic]
 *   pg-pool-guard demo --fleet [--short] [--json]
 *   pg-pool-guard scan [--port N]... [--regions FILE] [--watch] [--json]
 *   pg-pool-guard doctor <connection string | JSON config file>
 */
import { runDemo } from './demo'
import { runFleetDemo } from './fleet-demo'
import { doctorCommand } from './doctor'
import { CliError, codeOf, UsageError } from './errors'
import { finish, ignoreClosedPipes, print, printError } from './output'
import { scanCommand } from './scan'
import { addSecrets } from './secrets'

const USAGE = `usage: pg-pool-guard <command>

  demo     a guarded pool and a plain pg.Pool through a failover and a split-brain, live
           [--short] [--json] [--mode kernel|toxic]
           --fleet: six instances in three zones, the host × zone matrix from Prometheus (root)
  scan     this host's connections to PostgreSQL, from the kernel's socket table, with verdicts
           [--port N]... [--regions FILE] [--watch] [--json]
  doctor   what makes recovery slow or unsafe in a connection string or JSON config
           <connection string | config.json>
`

async function main(argv: string[]): Promise<number> {
  const [cmd, ...args] = argv
  switch (cmd) {
    case 'demo': {
      const json = args.includes('--json')
      if (args.includes('--fleet')) {
        const summary = await runFleetDemo({ short: args.includes('--short'), out: json ? () => {} : (l) => print(l) })
        if (json) print(JSON.stringify(summary, null, 2))
        return 0
      }
      const mode = args.includes('--mode') ? (args[args.indexOf('--mode') + 1] as 'kernel' | 'toxic') : undefined
      if (mode !== undefined && mode !== 'kernel' && mode !== 'toxic') throw new UsageError(`--mode must be kernel or toxic, got ${mode}`)
      const summary = await runDemo({ short: args.includes('--short'), mode, out: json ? () => {} : (l) => print(l) })
      if (json) print(JSON.stringify(summary, null, 2))
      return 0
    }
    case 'scan':
      return scanCommand(args)
    case 'doctor':
      return doctorCommand(args)
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE)
      return cmd === undefined ? 2 : 0
    default:
      throw new UsageError(`unknown command '${cmd}'`)
  }
}

ignoreClosedPipes()
// Whatever the command, the libpq password variables are never printed.
addSecrets([process.env.PGPASSWORD, process.env.PGSSLPASSWORD])
main(process.argv.slice(2)).then(
  (code) => finish(code),
  (err: unknown) => {
    const message = (err instanceof Error ? err.message : String(err)).replace(/^pg-pool-guard: /, '')
    const code = codeOf(err)
    if (err instanceof UsageError) {
      printError(`pg-pool-guard: ${message} [${code}]\n\n${USAGE}`)
    } else if (err instanceof CliError) {
      printError(`pg-pool-guard: ${message} [${code}]`)
    } else {
      // A foreign error's own code (ECONNREFUSED, a SQLSTATE) stays in the message; the bracket is ours.
      const own = (err as { code?: unknown } | null)?.code
      const detail = typeof own === 'string' && own !== code ? ` (${own})` : ''
      printError(`pg-pool-guard: cannot run: ${message}${detail} [${code}]`)
    }
    finish(err instanceof CliError ? err.exitCode : 1)
  }
)
