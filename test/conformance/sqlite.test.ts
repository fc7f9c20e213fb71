import fs from 'node:fs';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store';
import { tempDir } from '../helpers/server';
import { runStoreConformance } from './store-conformance';

const dirs = new Map<object, string>();

runStoreConformance('sqlite', {
  async create() {
    const dir = tempDir('eh-sqlite-');
    const store = new SqliteStore({ dataDir: dir });
    dirs.set(store, dir);
    return store;
  },
  async dispose(store) {
    await store.close();
    fs.rmSync(dirs.get(store) ?? '', { recursive: true, force: true });
    dirs.delete(store);
  },
});
