/**
 * The CLI's only way to write: every line is scrubbed of secrets (./secrets), and the process ends by
 * setting process.exitCode and letting stdout and stderr drain. process.exit() right after a write to a
 * pipe cuts the output at the pipe's buffer size (64 KiB): the rest is still queued in libuv.
 */
import { scrub } from './secrets'

export function print(text: string): void {
  process.stdout.write(`${scrub(text)}\n`)
}

export function printError(text: string): void {
  process.stderr.write(`${scrub(text)}\n`)
}

/** Writes nothing more; exits with `code` once both streams have flushed what is queued. */
export function finish(code: number): void {
  process.exitCode = code
  let pending = 2
  const done = (): void => {
    // Only now, with nothing queued: a command may leave handles behind (demo's pools and servers).
    if (--pending === 0) process.exit(code)
  }
  for (const s of [process.stdout, process.stderr]) {
    if (s.destroyed || !s.writable) done()
    else s.write('', () => done())
  }
}

/** A reader that went away (`scan --json | head`) is not an error worth a stack trace. */
export function ignoreClosedPipes(): void {
  for (const s of [process.stdout, process.stderr]) {
    s.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0)
      throw err
    })
  }
}
