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
import { closeOwn, connectOwn, rawSocketOf } from '../pg/internals'
import { ownClient } from '../pg/client-classes'
import { withDeadline } from '../util/time'
import { ROLE_SQL, type RoleRow } from './role-query'

/** The NOTICE a returning watch sends: the replay horizon seen last while still a standby. */
const REPLAYED_NOTICE = 'pg-pool-guard replayed-xmax '

/** Longest a single wait lasts on the server, ms (then it is re-issued). */
export const WATCH_WAIT_MS = 1000
const STEP_S = 0.01

// One simple-protocol message, two statements: the wait, then role and timeline (one round trip). While
// the server is a standby the loop also keeps the latest replay horizon (the snapshot's xmax: every id below
// it was replayed), and says the last one seen before the promotion in a NOTICE when it returns: with the
// xmax the role row reads right after, the two bounds that let an in-doubt commit be looked up on the
// promoted server (guard/in-doubt.ts).
// The horizon is kept only when the server is still in recovery after it was read: one read just after
// the promotion would be the new primary's next id, not what was replayed.
const WATCH_SQL = `DO $$ DECLARE replayed text; seen text; BEGIN
  FOR i IN 1..${Math.round(WATCH_WAIT_MS / 1000 / STEP_S)} LOOP
    seen := txid_snapshot_xmax(txid_current_snapshot())::text;
    EXIT WHEN NOT pg_is_in_recovery();
    replayed := seen;
    PERFORM pg_sleep(${STEP_S});
  END LOOP;
  IF NOT pg_is_in_recovery() THEN RAISE NOTICE '${REPLAYED_NOTICE}%', replayed; END IF;
END $$; ${ROLE_SQL}`

export class PromotionWatch {
  private client: pg.Client | undefined
  private stopped = false

  constructor(
    /** A fresh client config for the host. */
    private readonly config: () => Record<string, unknown>,
    private readonly timeoutMs: number,
    /**
     * The host is no longer in recovery: its role row, read the moment the wait returned, and the replay
     * horizon it had just before (null where the wait did not see it as a standby).
     */
    private readonly onPromoted: (row: RoleRow, ip: string | undefined, replayedXmax: string | null) => void,
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
      let replayed: string | null = null
      client.on('notice', (msg: { message?: string }) => {
        if (msg.message?.startsWith(REPLAYED_NOTICE)) replayed = msg.message.slice(REPLAYED_NOTICE.length)
      })
      await withDeadline(() => connectOwn(client), this.timeoutMs)
      while (!this.stopped) {
        const results = (await withDeadline(() => client.query(WATCH_SQL), this.timeoutMs + WATCH_WAIT_MS)) as unknown as pg.QueryResult[]
        if (this.stopped) return
        const row = results[results.length - 1].rows[0] as RoleRow
        if (!row.standby) {
          this.onPromoted(row, rawSocketOf(client)?.remoteAddress, replayed)
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
    if (c) closeOwn(c, new Error('promotion watch closed'))
  }
}
