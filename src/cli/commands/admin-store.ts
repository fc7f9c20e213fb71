import { rootStartedEvents } from '../../api/service';
import { EntryCodec } from '../../codec/entry-codec';
import { loadZstd } from '../../codec/compression';
import { PayloadCodec } from '../../codec/payload-codec';
import { loadConfig } from '../../config/config';
import { createStore } from '../../store/factory';
import type { AuthStore } from '../../auth/auth-stream';

/** Store settings an administrative command accepts, named as the flags of `serve`. */
export type StoreFlags = Partial<Record<'config' | 'store' | 'data-dir', string>>;

/**
 * Opens the configured store directly (not through the server), for commands that manage system
 * streams. SQLite in WAL mode lets this run next to a serving server on the same data folder.
 */
export async function openAdminStore(flags: StoreFlags): Promise<AuthStore> {
  const argv = Object.entries(flags).flatMap(([flag, value]) => (value === undefined ? [] : [`--${flag}`, value]));
  const config = loadConfig(argv, process.env);
  const zstd = await loadZstd();
  const maxDecoded = Math.max(config.limits.maxEntryBytes, config.limits.maxSnapshotBytes) * 2 + 64 * 1024;
  const entries = new EntryCodec(new PayloadCodec(zstd, maxDecoded));
  const store = createStore({ kind: config.store, dataDir: config.dataDir });
  await store.init(entries.encode(rootStartedEvents()), new Date());
  return { store, entries };
}
