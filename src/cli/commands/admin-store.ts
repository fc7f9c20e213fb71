import { loadConfig } from '../../config/config';
import type { EventStoreCore } from '../../core/event-store-core';
import { ADMIN_KEY_CACHE, openEventStore } from '../../wiring';

/** Store settings an administrative command accepts, named as the flags of `serve`. */
/** The store flags as parseArgs gives them: a flag that was not given is undefined, and skipped. */
export type StoreFlags = Partial<Record<'config' | 'store' | 'data-dir', string | undefined>>;

/**
 * Opens the configured store directly (not through the server), for commands that manage system
 * streams. SQLite in WAL mode lets this run next to a serving server on the same data folder.
 */
export async function openAdminStore(flags: StoreFlags): Promise<EventStoreCore> {
  const argv = Object.entries(flags).flatMap(([flag, value]) => (value === undefined ? [] : [`--${flag}`, value]));
  const config = loadConfig(argv, process.env);
  // The same wiring and keyring as the server: with encryption at rest the system streams are
  // encrypted too.
  const { core } = await openEventStore(config, { keyCache: ADMIN_KEY_CACHE });
  return core;
}
