/**
 * A watch session on a standby that answers the moment the standby is promoted, instead of at the host
 * monitor's next poll: the split-brain window (the old primary still acknowledging writes) closes at the
 * promotion, not up to `topologyIntervalMs` later.
 *
 * PostgreSQL 14+ reports `in_hot_standby` with ParameterStatus, but a backend sends changed reported
 * settings only before its next ReadyForQuery: an idle session hears nothing at promotion (checked on a real
 * standby: the message arrives only with the session's next query). So the watch keeps its session busy
 * with a bounded server-side wait that returns at promotion — checking pg_is_in_recovery() every 10 ms for
 * at most ~1 s — re-issued in a loop, and reads role and timeline in the same round trip.
 *
 * The session never holds the process open (its socket is unref'd), is destroyed on stop, and ends by
 * itself on any error or once the host is no longer a standby; the topology starts it again when its
 * monitor sees a standby.
 */
import pg from 'pg'
import { destroyInUse, ownClient, rawSocketOf } from '../pg/adapter'
import { withDeadline } from '../util/time'
import { ROLE_SQL, type RoleRow } from './role-query'

/** Longest a single wait lasts on the server, ms (then it is re-issued). */
export const WATCH_WAIT_MS = 1000
const STEP_S = 0.01

// One simple-protocol message, two statements: the wait, then role and timeline (one round trip).
const WATCH_SQL = `DO $$ BEGIN
  FOR i IN 1..${Math.round(WATCH_WAIT_MS / 1000 / STEP_S)} LOOP
    EXIT WHEN NOT pg_is_in_recovery();
    PERFORM pg_sleep(${STEP_S});
  END LOOP;
END $$; ${ROLE_SQL}`

export class PromotionWatch {
  private client: pg.Client | undefined
  private stopped = false

  constructor(
    /** A fresh client config for the host. */
    private readonly config: () => Record<string, unknown>,
    private readonly timeoutMs: number,
    /** The host is no longer in recovery: its role row, read the moment the wait returned. */
    private readonly onPromoted: (row: RoleRow, ip: string | undefined) => void,
    /** The watch ended (promoted, an error, or stopped). */
    private readonly onEnded: () => void
  ) {}

  start(): void {
    void this.run().finally(() => {
      this.close()
      this.onEnded()
    })
  }

  stop(): void {
    this.stopped = true
    this.close()
  }

  private async run(): Promise<void> {
    try {
      const client = ownClient(pg, this.config())
      client.on('error', () => {})
      this.client = client
      await withDeadline(() => client.connect(), this.timeoutMs)
      rawSocketOf(client)?.unref()
      while (!this.stopped) {
        const results = (await withDeadline(() => client.query(WATCH_SQL), this.timeoutMs + WATCH_WAIT_MS)) as unknown as pg.QueryResult[]
        if (this.stopped) return
        const row = results[results.length - 1].rows[0] as RoleRow
        if (!row.standby) {
          this.onPromoted(row, rawSocketOf(client)?.remoteAddress)
          return
        }
      }
    } catch {
      // The monitor's own poll reports the host's trouble; the topology restarts the watch on its next standby observation.
    }
  }

  private close(): void {
    const c = this.client
    this.client = undefined
    if (c) destroyInUse(c, new Error('promotion watch closed'))
  }
}
