/**
 * What became of the queries on a connection the guard evicted, pure: the transaction status the server
 * reported with its last ReadyForQuery, the texts of the queries sent and not yet answered (in order: a
 * pipeline may hold several), and how many were still queued in the client → one outcome per query.
 *
 * - not-sent: it never left the client (queued behind another query, or the connection never came up).
 * - rolled-back: the session was inside a transaction block and the statement was not its COMMIT. The server
 *   commits a block only when a COMMIT arrives, and none ever will on this connection: the block is (or will
 *   be, when the server notices the dead connection) rolled back. Retrying the whole transaction is safe.
 *   A COMMIT of a block that had already failed ('E') is a rollback too.
 * - unknown: a COMMIT (or PREPARE TRANSACTION), or a statement outside a transaction block (autocommit), was
 *   sent and not answered: it may have been applied. So is anything whose text or starting state is unknown.
 *
 * Statement texts are split on semicolons outside quotes, dollar quotes and comments (a simple-protocol
 * query may hold several statements); only each statement's first words are read.
 */
import type { QueryOutcome } from '../errors'
import type { TxStatus } from '../pg/in-flight'

export type { TxStatus }

export type StatementKind = 'begin' | 'commit' | 'rollback' | 'other'

/** The kinds of the statements in one query text, in order (empty statements dropped). */
export function statementKinds(text: string): StatementKind[] {
  return splitStatements(text).map(kindOf)
}

/** One outcome per query: first the sent ones (oldest first), then `queued` not-sent ones. `sent` null: text unknown. */
export function outcomesOf(status: TxStatus, sent: (string | null)[], queued: number): QueryOutcome[] {
  const out: QueryOutcome[] = []
  let s: TxStatus = status
  for (const text of sent) {
    if (text === null) {
      out.push('unknown')
      s = null
      continue
    }
    const kinds = statementKinds(text)
    const commits = kinds.includes('commit')
    if (s === 'T' || s === 'E') {
      // In a block: only a COMMIT can make it stick, and a COMMIT of a failed block rolls back.
      out.push(commits && !(s === 'E' && kinds.length === 1) ? 'unknown' : 'rolled-back')
    } else if (s === 'I' && kinds[0] === 'begin' && !commits) {
      out.push('rolled-back') // it opened a block that was never committed
    } else {
      out.push('unknown')
    }
    s = after(s, kinds)
  }
  for (let i = 0; i < queued; i++) out.push('not-sent')
  return out
}

/** The status after a query's statements ran (for the next query of a pipeline). */
function after(status: TxStatus, kinds: StatementKind[]): TxStatus {
  let s = status
  for (const k of kinds) {
    if (k === 'begin') s = 'T'
    else if (k === 'commit' || k === 'rollback') s = 'I'
  }
  return s
}

/** Whether a statement (by its text) is one after which the guard may ask for the transaction's id: not a read or transaction control. */
export function mayWrite(text: string): boolean {
  const words = firstWords(splitStatements(text)[0] ?? '')
  return words.length > 0 && !NO_XID.has(words[0])
}

/** First words that cannot give a transaction an id (reads, session and transaction control) or must not be followed by another message (COPY). */
const NO_XID = new Set([
  'SELECT', 'SHOW', 'SET', 'RESET', 'FETCH', 'MOVE', 'DECLARE', 'CLOSE', 'EXPLAIN', 'VALUES', 'TABLE', 'LISTEN', 'UNLISTEN',
  'SAVEPOINT', 'RELEASE', 'ROLLBACK', 'ABORT', 'COMMIT', 'END', 'BEGIN', 'START', 'PREPARE', 'COPY', 'DISCARD', 'DEALLOCATE', 'EXECUTE',
])

function kindOf(statement: string): StatementKind {
  const [a, b] = firstWords(statement)
  switch (a) {
    case 'BEGIN':
    case 'START':
      return 'begin'
    case 'COMMIT':
      return b === 'PREPARED' ? 'other' : 'commit'
    case 'END':
      return 'commit'
    case 'PREPARE':
      return b === 'TRANSACTION' ? 'commit' : 'other' // a prepared transaction outlives the session
    case 'ROLLBACK':
      return b === 'TO' || b === 'PREPARED' ? 'other' : 'rollback'
    case 'ABORT':
      return 'rollback'
    default:
      return 'other'
  }
}

function firstWords(statement: string): string[] {
  return (statement.match(/[A-Za-z_]+/g) ?? []).slice(0, 2).map((w) => w.toUpperCase())
}

/**
 * Splits on top-level semicolons; quotes ('...', "...", E'...' with backslashes), dollar quotes ($tag$...$tag$)
 * and comments (-- and nested /* *\/) are skipped, and comments do not reach the statements' text.
 */
export function splitStatements(text: string): string[] {
  const out: string[] = []
  let cur = ''
  let i = 0
  const n = text.length
  while (i < n) {
    const c = text[i]
    if (c === '-' && text[i + 1] === '-') {
      while (i < n && text[i] !== '\n') i++
      cur += ' '
      continue
    }
    if (c === '/' && text[i + 1] === '*') {
      let depth = 0
      while (i < n) {
        if (text[i] === '/' && text[i + 1] === '*') {
          depth++
          i += 2
        } else if (text[i] === '*' && text[i + 1] === '/') {
          depth--
          i += 2
          if (depth === 0) break
        } else i++
      }
      cur += ' '
      continue
    }
    if (c === "'" || c === '"') {
      const escapes = c === "'" && (text[i - 1] === 'E' || text[i - 1] === 'e') && !/[A-Za-z0-9_]/.test(text[i - 2] ?? '')
      let j = i + 1
      for (; j < n; j++) {
        if (escapes && text[j] === '\\') {
          j++
          continue
        }
        if (text[j] === c) {
          if (text[j + 1] === c) {
            j++
            continue
          }
          break
        }
      }
      cur += text.slice(i, j + 1)
      i = j + 1
      continue
    }
    if (c === '$') {
      const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(text.slice(i))
      if (m && !/[A-Za-z0-9_]/.test(text[i - 1] ?? '')) {
        const end = text.indexOf(m[0], i + m[0].length)
        const stop = end < 0 ? n : end + m[0].length
        cur += text.slice(i, stop)
        i = stop
        continue
      }
    }
    if (c === ';') {
      if (cur.trim()) out.push(cur.trim())
      cur = ''
      i++
      continue
    }
    cur += c
    i++
  }
  if (cur.trim()) out.push(cur.trim())
  return out
}
