/**
 * Errors the command line prints. Each carries a stable `code`: the library's own (ErrorCodes, from
 * ../errors) when a library error reaches the CLI, else one of the CLI-local codes below. Scripts should
 * match on the code in brackets at the end of the line, never on the message text.
 */
import { ErrorCodes, type ErrorCode } from '../errors'

export const CliErrorCodes = {
  /** Bad command line: unknown command or argument, a missing or malformed value. Exit code 2. */
  USAGE: 'PGG_CLI_USAGE',
  /** An input file (doctor's config, scan's --regions) does not exist or cannot be opened. Exit code 2. */
  INPUT_UNREADABLE: 'PGG_CLI_INPUT_UNREADABLE',
  /** An input is a FIFO, a device, a directory or a socket: refused, since reading it may never end. Exit code 2. */
  INPUT_NOT_A_FILE: 'PGG_CLI_INPUT_NOT_A_FILE',
  /** An input file is larger than the cap (INPUT_MAX_BYTES). Exit code 2. */
  INPUT_TOO_LARGE: 'PGG_CLI_INPUT_TOO_LARGE',
  /** An input file is not valid JSON, or not the JSON shape expected. Exit code 2. */
  INPUT_INVALID_JSON: 'PGG_CLI_INPUT_INVALID_JSON',
  /** Anything else that stopped a command (an I/O error, a bug). Exit code 1. */
  FAILED: 'PGG_CLI_FAILED',
} as const

export type CliErrorCode = (typeof CliErrorCodes)[keyof typeof CliErrorCodes]

/** An error the CLI reports on one line as `pg-pool-guard: <message> [<code>]`, then exits with `exitCode`. */
export class CliError extends Error {
  readonly code: CliErrorCode | ErrorCode
  readonly exitCode: number
  constructor(code: CliErrorCode | ErrorCode, message: string, exitCode = code === CliErrorCodes.FAILED ? 1 : 2) {
    super(message)
    this.name = 'CliError'
    this.code = code
    this.exitCode = exitCode
  }
}

export class UsageError extends CliError {
  constructor(message: string) {
    super(CliErrorCodes.USAGE, message, 2)
  }
}

const KNOWN = new Set<string>([...Object.values(ErrorCodes), ...Object.values(CliErrorCodes)])

/** The code to print for any thrown value: its own when it is one of ours, else PGG_CLI_FAILED. */
export function codeOf(err: unknown): CliErrorCode | ErrorCode {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && KNOWN.has(code) ? (code as CliErrorCode | ErrorCode) : CliErrorCodes.FAILED
}
