/**
 * Reading the CLI's input files (doctor's JSON config, scan's --regions map) safely: only regular files,
 * at most INPUT_MAX_BYTES, and errors that name the file and a line/column but never quote its text (a
 * config holds passwords and keys).
 */
import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs'
import { CliError, CliErrorCodes } from './errors'

/** A pg.Pool config or a regions map is a few KiB; anything near this is a mistake. */
export const INPUT_MAX_BYTES = 1024 * 1024

/**
 * The file's text. Opened with O_NONBLOCK so that a FIFO cannot block the open (it is then refused by
 * fstat); read up to the cap + 1 byte whatever the size says, since /proc files report 0.
 * @param what what the file is for, for messages ("the config file")
 */
export function readInputFile(path: string, what: string, maxBytes = INPUT_MAX_BYTES): string {
  // stat before open as well as after: opening some devices has effects (a tape rewinds, a tty is taken).
  let pre: Stats
  try {
    pre = statSync(path)
  } catch (err) {
    throw new CliError(CliErrorCodes.INPUT_UNREADABLE, `cannot open ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`)
  }
  if (!pre.isFile()) throw notAFile(what, path, pre)
  let fd: number
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY)
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    throw new CliError(CliErrorCodes.INPUT_UNREADABLE, `cannot open ${what} ${path}: ${e.code ?? 'error'}`)
  }
  try {
    const st = fstatSync(fd)
    if (!st.isFile()) throw notAFile(what, path, st)
    if (st.size > maxBytes) throw tooLarge(what, path, maxBytes)
    const buf = Buffer.alloc(Math.min(maxBytes + 1, Math.max(st.size + 1, 64 * 1024)))
    let n = 0
    for (;;) {
      if (n === buf.length) {
        if (n > maxBytes) throw tooLarge(what, path, maxBytes)
        throw new CliError(CliErrorCodes.FAILED, `${what} ${path} grew while it was read`)
      }
      let got: number
      try {
        got = readSync(fd, buf, n, buf.length - n, null)
      } catch (err) {
        throw new CliError(CliErrorCodes.INPUT_UNREADABLE, `cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`)
      }
      if (got === 0) break
      n += got
    }
    if (n > maxBytes) throw tooLarge(what, path, maxBytes)
    return buf.subarray(0, n).toString('utf8')
  } finally {
    closeSync(fd)
  }
}

function notAFile(what: string, path: string, st: Stats): CliError {
  const kind = st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a FIFO' : st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : st.isSocket() ? 'a socket' : 'not a regular file'
  return new CliError(CliErrorCodes.INPUT_NOT_A_FILE, `${what} ${path} is ${kind}; give a regular file`)
}

function tooLarge(what: string, path: string, maxBytes: number): CliError {
  return new CliError(CliErrorCodes.INPUT_TOO_LARGE, `${what} ${path} is larger than ${maxBytes} bytes`)
}

/**
 * JSON.parse, with an error that gives the file name and the line and column only: V8's own message
 * quotes the text around the error ("...\"s3cret\" }" is not valid JSON), which may be a password.
 */
export function parseJsonText(text: string, name: string): unknown {
  try {
    return JSON.parse(text)
  } catch (err) {
    const msg = (err as Error).message
    let where = ''
    const lc = /line (\d+) column (\d+)/.exec(msg)
    const endOfInput = /end of JSON input/i.test(msg)
    const offset = lc || endOfInput ? undefined : Number(/at position (\d+)/.exec(msg)?.[1] ?? errorOffset(text))
    if (lc) where = ` at line ${lc[1]}, column ${lc[2]}`
    else if (endOfInput) where = ' (it ends too early)'
    else if (offset !== undefined && offset >= 0) {
      const before = text.slice(0, offset)
      where = ` at line ${before.split('\n').length}, column ${offset - before.lastIndexOf('\n')}`
    }
    throw new CliError(CliErrorCodes.INPUT_INVALID_JSON, `${name} is not valid JSON${where}`)
  }
}

/**
 * Where JSON.parse fails, for V8 versions whose message gives no position: the shortest prefix that fails
 * other than by ending where it was cut ends with the offending character (every shorter prefix is the start of
 * valid JSON). -1 when not found. About 20 parses for a file at the size cap.
 */
function errorOffset(text: string): number {
  const badAt = (k: number): boolean => {
    try {
      JSON.parse(text.slice(0, k))
      return false
    } catch (err) {
      // A prefix cut inside a token fails "at position k" or "end of input": that is not the error.
      const m = (err as Error).message
      const at = /at position (\d+)/.exec(m)
      return !/end of JSON input/i.test(m) && (at === null || Number(at[1]) < k)
    }
  }
  if (!badAt(text.length)) return -1
  let lo = 0
  let hi = text.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (badAt(mid)) hi = mid
    else lo = mid + 1
  }
  return lo - 1
}
