import type Database from 'better-sqlite3';

/** The embedded store's schema. Statements are idempotent so start-up can always run them. */
export const SCHEMA = `
CREATE TABLE IF NOT EXISTS streams (
  id           INTEGER PRIMARY KEY,
  path         TEXT    NOT NULL UNIQUE,
  parent_id    INTEGER REFERENCES streams (id),
  head         INTEGER NOT NULL,
  created_at   INTEGER NOT NULL,
  child_count  INTEGER NOT NULL DEFAULT 0,
  bytes_stored INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS streams_by_parent ON streams (parent_id, path);

CREATE TABLE IF NOT EXISTS entries (
  stream_id   INTEGER NOT NULL REFERENCES streams (id),
  version     INTEGER NOT NULL,
  recorded_at INTEGER NOT NULL,
  request_id  TEXT,
  payload     BLOB    NOT NULL,
  -- The entry's place in the feed (port.ts, Position), assigned in commit order by the group
  -- commit. Null only in a database written before the feed existed, until feed-upgrade.ts has
  -- run (which also adds the column and its index to such a database).
  position    INTEGER,
  PRIMARY KEY (stream_id, version)
) WITHOUT ROWID;
-- Request ids are kept for the stream's whole life: idempotency has no window on this store.
CREATE UNIQUE INDEX IF NOT EXISTS entries_by_request_id ON entries (stream_id, request_id)
  WHERE request_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS snapshots (
  stream_id    INTEGER NOT NULL REFERENCES streams (id),
  perspective  TEXT    NOT NULL,
  version      INTEGER NOT NULL,
  content_type TEXT    NOT NULL,
  payload      BLOB    NOT NULL,
  stored_at    INTEGER NOT NULL,
  PRIMARY KEY (stream_id, perspective)
) WITHOUT ROWID;

-- Wrapped data-encryption keys, per stream path and DEK version. Rows are deleted when the
-- stream is shredded, and the path is remembered in shredded_streams.
CREATE TABLE IF NOT EXISTS stream_keys (
  stream      TEXT    NOT NULL,
  dek_version INTEGER NOT NULL,
  kek_id      TEXT    NOT NULL,
  wrapped     BLOB    NOT NULL,
  created_at  INTEGER NOT NULL,
  PRIMARY KEY (stream, dek_version)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS shredded_streams (
  stream      TEXT    PRIMARY KEY,
  shredded_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Consumer groups (docs/consumer-groups.md): the definition (JSON), each partition's position
-- (every entry of the partition at or before it is done) with the revision saves compare, and
-- the entries the group parked.
CREATE TABLE IF NOT EXISTS consumer_groups (
  name       TEXT    PRIMARY KEY,
  definition TEXT    NOT NULL,
  revision   INTEGER NOT NULL,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS consumer_group_partitions (
  group_name       TEXT    NOT NULL,
  partition        INTEGER NOT NULL,
  position         INTEGER NOT NULL,
  revision         INTEGER NOT NULL,
  owner            TEXT,
  lease_expires_at INTEGER,
  -- What is done past the position (partition-progress.ts); added by upgradeGroupPartitions
  -- to a database written before it.
  progress         BLOB,
  PRIMARY KEY (group_name, partition)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS consumer_group_parked (
  group_name TEXT    NOT NULL,
  position   INTEGER NOT NULL,
  stream     TEXT    NOT NULL,
  version    INTEGER NOT NULL,
  deliveries INTEGER NOT NULL,
  reason     TEXT    NOT NULL,
  parked_at  INTEGER NOT NULL,
  PRIMARY KEY (group_name, position)
) WITHOUT ROWID;
`;

/** Adds the partitions' `progress` column to a database written before it (NULL: nothing known past the position). */
export function upgradeGroupPartitions(db: Database.Database): void {
  const columns = db.prepare<[string], { name: string }>('SELECT name FROM pragma_table_info(?)').all('consumer_group_partitions');
  if (!columns.some((column) => column.name === 'progress')) db.exec('ALTER TABLE consumer_group_partitions ADD COLUMN progress BLOB');
}
