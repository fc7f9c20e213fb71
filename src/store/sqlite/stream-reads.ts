import type Database from 'better-sqlite3';
import type { ReadDirection, ReadQuery, StoredEntry } from '../port';

/**
 * An entry row as the reads of a stream fetch it: an array (better-sqlite3's `raw` mode), not an
 * object. Why: a page of single-event entries spent about 0.6 µs per row (of 2.9) making the row
 * object, a quarter of what reading a row costs (BENCHMARKS.md, target 4).
 */
type RawEntryRow = [version: bigint, recordedAt: bigint, payload: Buffer];

/** An entry row without its payload, only the payload's size: the first step of a joined read. */
type EntryHeadRow = [version: bigint, recordedAt: bigint, payloadBytes: bigint];

/** Page sizes per direction whose statement is kept with the size written in (StatementsByLimit). */
const MAX_READ_LIMITS = 64;

/** A page of a stream as the store reads it, before the store adds the stream's head. */
export interface StreamPage {
  entries: StoredEntry[];
  more: boolean;
}

/**
 * The reads of one stream's entries, a page at a time, in either direction.
 *
 * Two ways, the same page. Row by row: a Buffer per payload, copied out of SQLite, which the
 * caller may keep for as long as it likes. Joined (for callers that copy the payloads out at
 * once, `ReadQuery.transientPayloads`): the sizes first, then the page's payloads in one blob
 * (`group_concat`), each entry's payload a view into it. A Buffer per row is most of what a read
 * of small entries costs: measured alone on 1,000-row pages of ~300-byte entries, 2.3-3.7 µs per
 * row fetched one by one against 1.3-1.7 joined (BENCHMARKS.md, issue 14 target 4).
 *
 * group_concat joins BLOBs byte for byte in a UTF-8 database (it takes their bytes as text and
 * keeps their length, NUL bytes included) and the CAST gives them back as a BLOB; its ORDER BY
 * (SQLite 3.44 and later; better-sqlite3 brings its own SQLite) fixes the order. The joined size
 * is checked against the sizes read first; should another process have changed the rows in
 * between (the CLI beside the server), the page is read again row by row.
 */
export class StreamReads {
  private readonly rowsByLimit: StatementsByLimit<RawEntryRow>;
  private readonly headsByLimit: StatementsByLimit<EntryHeadRow>;
  private readonly joinedPayloads: Record<ReadDirection, Database.Statement<[bigint, bigint, bigint], Buffer | null>>;
  private readonly rowsForward: Database.Statement<[bigint, bigint, number], RawEntryRow>;
  private readonly rowsBackward: Database.Statement<[bigint, bigint, number], RawEntryRow>;
  private readonly joinable: boolean;

  constructor(db: Database.Database) {
    const columns = {
      rows: 'version, recorded_at, payload',
      heads: 'version, recorded_at, length(payload)',
    };
    const select = (what: string, direction: ReadDirection, limit: number | '?') =>
      `SELECT ${what} FROM entries WHERE stream_id = ? AND version ${
        direction === 'forward' ? '>= ? ORDER BY version' : '<= ? ORDER BY version DESC'
      } LIMIT ${limit}`;
    this.rowsByLimit = new StatementsByLimit((direction, limit) =>
      db.prepare<[bigint, bigint], RawEntryRow>(select(columns.rows, direction, limit)).raw(true),
    );
    this.headsByLimit = new StatementsByLimit((direction, limit) =>
      db.prepare<[bigint, bigint], EntryHeadRow>(select(columns.heads, direction, limit)).raw(true),
    );
    this.rowsForward = db.prepare<[bigint, bigint, number], RawEntryRow>(select(columns.rows, 'forward', '?')).raw(true);
    this.rowsBackward = db.prepare<[bigint, bigint, number], RawEntryRow>(select(columns.rows, 'backward', '?')).raw(true);
    const joined = (order: string) =>
      db
        .prepare<[bigint, bigint, bigint], Buffer | null>(
          `SELECT CAST(group_concat(payload, x'' ORDER BY version ${order}) AS BLOB)
           FROM entries WHERE stream_id = ? AND version BETWEEN ? AND ?`,
        )
        .pluck();
    this.joinedPayloads = { forward: joined('ASC'), backward: joined('DESC') };
    // group_concat reads BLOBs as text: byte for byte only in a UTF-8 database (ours are).
    this.joinable = db.pragma('encoding', { simple: true }) === 'UTF-8';
  }

  /** A page from `query.fromVersion`: at most `limit` entries, at least one, within `maxBytes` after the first. */
  read(streamId: bigint, query: ReadQuery): StreamPage {
    if (query.transientPayloads && this.joinable) {
      const page = this.readJoined(streamId, query);
      if (page) return page;
    }
    return this.readRows(streamId, query);
  }

  private readRows(streamId: bigint, query: ReadQuery): StreamPage {
    // One row more than asked tells whether more exist without a second query. Iterated, not
    // fetched whole: the page stops at its bytes bound without holding every row in memory.
    const rows = this.rows(streamId, query.fromVersion, query.direction, query.limit + 1);
    const entries: StoredEntry[] = [];
    let bytes = 0;
    let more = false;
    for (const [version, recordedAt, payload] of rows) {
      if (entries.length === query.limit || (entries.length > 0 && bytes + payload.byteLength > query.maxBytes)) {
        more = true;
        break;
      }
      bytes += payload.byteLength;
      entries.push({ version, recordedAt: new Date(Number(recordedAt)), payload });
    }
    return { entries, more };
  }

  /**
   * The joined read (see the class); undefined when the rows changed between its two statements,
   * or for a page size past MAX_READ_LIMITS others.
   */
  private readJoined(streamId: bigint, query: ReadQuery): StreamPage | undefined {
    // Sizes only: fetched whole, a page of them is small whatever the entries weigh.
    const heads = this.headsByLimit.get(query.direction, query.limit + 1)?.all(streamId, query.fromVersion);
    if (!heads) return undefined;
    let count = 0;
    let bytes = 0;
    for (const [, , size] of heads) {
      const payloadBytes = Number(size);
      if (count === query.limit || (count > 0 && bytes + payloadBytes > query.maxBytes)) break;
      bytes += payloadBytes;
      count++;
    }
    if (count === 0) return { entries: [], more: false };
    const first = (heads[0] as EntryHeadRow)[0];
    const last = (heads[count - 1] as EntryHeadRow)[0];
    const [low, high] = query.direction === 'forward' ? [first, last] : [last, first];
    const joined = this.joinedPayloads[query.direction].get(streamId, low, high);
    if (!joined || joined.byteLength !== bytes) return undefined;
    const entries: StoredEntry[] = new Array<StoredEntry>(count);
    let at = 0;
    for (let i = 0; i < count; i++) {
      const [version, recordedAt, size] = heads[i] as EntryHeadRow;
      const end = at + Number(size);
      entries[i] = { version, recordedAt: new Date(Number(recordedAt)), payload: joined.subarray(at, end) };
      at = end;
    }
    return { entries, more: heads.length > count };
  }

  private rows(streamId: bigint, fromVersion: bigint, direction: ReadDirection, limit: number): IterableIterator<RawEntryRow> {
    const statement = this.rowsByLimit.get(direction, limit);
    if (statement) return statement.iterate(streamId, fromVersion);
    return (direction === 'forward' ? this.rowsForward : this.rowsBackward).iterate(streamId, fromVersion, limit);
  }
}

/**
 * Statements with the page size written into their LIMIT, by direction and size: this SQLite
 * (built with STAT4) prepares a statement with `LIMIT ?` again at every binding, 30 µs a read
 * whatever it returns; with the limit written in, a one-row read takes 10 µs. Page sizes are few
 * (the API's, catch-up's); past MAX_READ_LIMITS of them `get` answers undefined and the caller
 * binds the limit.
 */
class StatementsByLimit<Row> {
  private readonly byLimit: Record<ReadDirection, Map<number, Database.Statement<[bigint, bigint], Row>>> = {
    forward: new Map(),
    backward: new Map(),
  };

  constructor(private readonly prepare: (direction: ReadDirection, limit: number) => Database.Statement<[bigint, bigint], Row>) {}

  get(direction: ReadDirection, limit: number): Database.Statement<[bigint, bigint], Row> | undefined {
    const cache = this.byLimit[direction];
    let statement = cache.get(limit);
    if (!statement && Number.isSafeInteger(limit) && limit > 0 && cache.size < MAX_READ_LIMITS) {
      statement = this.prepare(direction, limit);
      cache.set(limit, statement);
    }
    return statement;
  }
}
