#!/usr/bin/env node
/**
 * The pg-pool-guard command line:
 *   pg-pool-guard demo [--short] [--json] [--mode kernel|toxic]
 *   pg-pool-guard scan [--port N]... [--regions FILE] [--watch] [--json]
 *   pg-pool-guard doctor <connection string | JSON config file>
 */
import { runDemo } from './demo'
import { doctorCommand } from './doctor'
import { scanCommand } from './scan'

const USAGE = `usage: pg-pool-guard <command>

  demo     a guarded pool and a plain pg.Pool through a failover and a split-brain, live
           [--short] [--json] [--mode kernel|toxic]
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
      const mode = args.includes('--mode') ? (args[args.indexOf('--mode') + 1] as 'kernel' | 'toxic') : undefined
      if (mode !== undefined && mode !== 'kernel' && mode !== 'toxic') throw new UsageError(`--mode must be kernel or toxic, got ${mode}`)
      const summary = await runDemo({ short: args.includes('--short'), mode, out: json ? () => {} : (l) => console.log(l) })
      if (json) console.log(JSON.stringify(summary, null, 2))
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

class UsageError extends Error {}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error & { code?: string }) => {
    if (err instanceof UsageError) {
      process.stderr.write(`pg-pool-guard: ${err.message}\n\n${USAGE}`)
      process.exit(2)
    }
    process.stderr.write(`pg-pool-guard: cannot run: ${err.message.replace(/^pg-pool-guard: /, '')}${err.code ? ` [${err.code}]` : ''}\n`)
    process.exit(1)
  }
)
