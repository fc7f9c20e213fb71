import { loadZstd } from '../../codec/compression';
import { PayloadCodec } from '../../codec/payload-codec';
import { Codecs } from '../../codec/stream-codec';
import { loadConfig } from '../../config/config';
import { StreamKeyManager } from '../../crypto/stream-keys';
import { loadKeyring, openStore } from '../../server';
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
  // The same keyring as the server: with encryption at rest the system streams are encrypted too.
  const kek = loadKeyring(config);
  const store = createStore({ kind: config.store, dataDir: config.dataDir, dynamodb: config.dynamodb });
  const keys = kek && new StreamKeyManager(store, kek, { cacheStreams: 100, cacheTtlMs: 60_000 });
  const codecs = new Codecs(new PayloadCodec(zstd, maxDecoded), keys);
  await openStore(store, codecs, keys);
  return { store, codecs };
}
