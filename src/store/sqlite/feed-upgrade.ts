import type Database from 'better-sqlite3';

/** Entries given a position per transaction while upgrading: each batch is committed on its own. */
const BATCH = 20_000;

/** How the upgrade reports progress (the server's log). */
export type UpgradeLog = (message: string, fields: Record<string, unknown>) => void;

/**
 * Brings a database written before the feed existed up to date, in place: adds the `position`
 * column and its index, then gives every entry without a position one, in commit order, a batch
 * per transaction. A crash part-way loses nothing: the next start carries on with the entries
 * still without a position, numbered after the ones done.
 *
 * Commit order is not recorded by older databases; it is rebuilt from the commit times, with
 * each stream's entries in version order whatever the clock did (an entry's time is taken as the
 * latest time of the stream's entries up to it). Entries committed in the same millisecond are
 * ordered by stream creation, so a parent's `$stream.child-created` comes before the child's
 * `$stream.started`.
 */
export function upgradeFeed(db: Database.Database, log: UpgradeLog | undefined): void {
  const columns = db.prepare<[string], { name: string }>('SELECT name FROM pragma_table_info(?)').all('entries');
  if (!columns.some((column) => column.name === 'position')) {
    db.exec('ALTER TABLE entries ADD COLUMN position INTEGER');
  }
  // Unique, and NULLs are distinct: it holds while old entries still wait for their position.
  db.exec('CREATE UNIQUE INDEX IF NOT EXISTS entries_by_position ON entries (position)');

  const missing = db.prepare<[], { count: bigint }>('SELECT COUNT(*) AS count FROM entries WHERE position IS NULL').get();
  const total = Number(missing?.count ?? 0n);
  if (total === 0) return;
  log?.('upgrading the database for the feed: numbering entries in commit order', { entries: total });
  const started = Date.now();

  db.exec(`
    DROP TABLE IF EXISTS temp.feed_backfill;
    CREATE TEMP TABLE feed_backfill (n INTEGER PRIMARY KEY, stream_id INTEGER NOT NULL, version INTEGER NOT NULL);
    INSERT INTO feed_backfill (n, stream_id, version)
    SELECT ROW_NUMBER() OVER (ORDER BY committed, stream_id, version), stream_id, version
    FROM (
      SELECT stream_id, version,
             MAX(recorded_at) OVER (PARTITION BY stream_id ORDER BY version ROWS UNBOUNDED PRECEDING) AS committed
      FROM entries WHERE position IS NULL
    );
  `);
  const base = db.prepare<[], { head: bigint | null }>('SELECT MAX(position) AS head FROM entries').get()?.head ?? 0n;
  const number = db.prepare<[bigint, bigint, bigint]>(
    `UPDATE entries SET position = ? + b.n FROM temp.feed_backfill AS b
     WHERE b.n > ? AND b.n <= ? AND entries.stream_id = b.stream_id AND entries.version = b.version`,
  );
  const batch = db.transaction((from: bigint, to: bigint) => number.run(base, from, to));
  for (let done = 0; done < total; done += BATCH) {
    batch(BigInt(done), BigInt(Math.min(done + BATCH, total)));
    log?.('feed upgrade progress', { done: Math.min(done + BATCH, total), total });
  }
  db.exec('DROP TABLE temp.feed_backfill');
  log?.('feed upgrade done', { entries: total, ms: Date.now() - started });
}
