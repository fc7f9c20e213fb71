import assert from 'node:assert/strict';
import { LocalKeyring, generateKeyring } from '../../src/crypto/keyring';
import { StreamKeyManager } from '../../src/crypto/stream-keys';
import { KeyUnavailableError } from '../../src/core/errors';
import type { EventStore, StreamKeys, WrappedKey } from '../../src/store/port';

/** The key operations of a store, in memory, counting key reads. */
class KeyStore {
  reads = 0;
  private readonly keys = new Map<string, WrappedKey[]>();

  async getStreamKeys(stream: string): Promise<StreamKeys> {
    this.reads++;
    await Promise.resolve();
    return { keys: [...(this.keys.get(stream) ?? [])], shredded: false };
  }

  async addStreamKey(stream: string, key: WrappedKey): Promise<boolean> {
    const keys = this.keys.get(stream) ?? [];
    if (keys.some((k) => k.dekVersion === key.dekVersion)) return false;
    this.keys.set(stream, [...keys, key]);
    return true;
  }

  async describe(): Promise<object> {
    return {};
  }
}

describe('stream key manager', () => {
  const kek = LocalKeyring.parse(JSON.stringify(generateKeyring('kek-1')), 'test keyring');
  const options = { cacheStreams: 100, cacheTtlMs: 60_000 };
  let store: KeyStore;
  /** Two replicas' key managers on the same keys. */
  let here: StreamKeyManager;
  let elsewhere: StreamKeyManager;

  beforeEach(() => {
    store = new KeyStore();
    here = new StreamKeyManager(store as unknown as EventStore, kek, options);
    elsewhere = new StreamKeyManager(store as unknown as EventStore, kek, options);
  });

  it('reloads cached keys once when entries name a version rotated elsewhere', async () => {
    assert.equal((await here.forStream('/s', 'write')).activeVersion, 1);
    assert.equal(await elsewhere.rotate('/s'), 2);
    store.reads = 0;
    // A burst of new entries read at once: one reload, shared.
    const all = await Promise.all(Array.from({ length: 20 }, () => here.forStream('/s', 'read', 2)));
    assert.equal(store.reads, 1);
    for (const keys of all) {
      assert.equal(keys.activeVersion, 2);
      assert.equal(keys.key(2).byteLength, 32);
    }
    // Entries of known versions cost nothing more.
    await here.forStream('/s', 'read', 1);
    await here.forStream('/s', 'read', 2);
    assert.equal(store.reads, 1);
  });

  it('reloads at most once per call for a version that does not exist', async () => {
    await here.forStream('/s', 'write');
    store.reads = 0;
    const keys = await here.forStream('/s', 'read', 7);
    assert.equal(store.reads, 1);
    assert.throws(() => keys.key(7), KeyUnavailableError);
  });
});
