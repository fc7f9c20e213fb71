import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store';
import { tempDir } from '../helpers/server';
import { runEncryptionSuite } from './encryption-suite';

runEncryptionSuite('embedded store', () => {
  const dataDir = tempDir('eh-crypto-store-');
  return {
    open: () => new SqliteStore({ dataDir }),
    // The database file with its WAL and shared memory: whatever a copied data folder holds.
    rawBytes: async () =>
      Buffer.concat(fs.readdirSync(dataDir).map((name) => fs.readFileSync(path.join(dataDir, name)))),
    async copyEntryPayload(stream, from, to) {
      const db = new Database(path.join(dataDir, 'eventhorizon.sqlite'));
      try {
        db.prepare(
          `UPDATE entries SET payload = (SELECT e.payload FROM entries e WHERE e.stream_id = entries.stream_id AND e.version = ?)
           WHERE version = ? AND stream_id = (SELECT id FROM streams WHERE path = ?)`,
        ).run(from, to, stream);
      } finally {
        db.close();
      }
    },
    async changeEntryPayload(stream, version, change) {
      const db = new Database(path.join(dataDir, 'eventhorizon.sqlite'));
      try {
        const where = 'version = ? AND stream_id = (SELECT id FROM streams WHERE path = ?)';
        const row = db.prepare<[bigint, string], { payload: Buffer }>(`SELECT payload FROM entries WHERE ${where}`).get(version, stream);
        if (!row) throw new Error(`no entry ${version} in ${stream}`);
        db.prepare(`UPDATE entries SET payload = ? WHERE ${where}`).run(change(row.payload), version, stream);
      } finally {
        db.close();
      }
    },
    remove: async () => fs.rmSync(dataDir, { recursive: true, force: true }),
  };
});
