import assert from 'node:assert/strict';
import { loadZstd, type Compressor } from '../../src/codec/compression';
import { EntryContexts, StreamCodec } from '../../src/codec/stream-codec';
import { randomBytes } from 'node:crypto';
import { FORMAT_ENCRYPTED_V1, MIN_COMPRESS_BYTES, PayloadCodec } from '../../src/codec/payload-codec';
import type { DataKeys } from '../../src/crypto/stream-keys';
import type { Event } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { Compression } from '../../src/codec/compression';
import { NONCE_BYTES, open, seal } from '../../src/crypto/aead';
import { CorruptDataError } from '../../src/core/errors';

describe('payload codec', () => {
  let zstd: Compressor;
  let codec: PayloadCodec;
  before(async () => {
    zstd = await loadZstd();
    codec = new PayloadCodec(zstd, 1 << 20);
  });

  it('compresses typical JSON with zstd and restores it exactly', () => {
    const json = Buffer.from(JSON.stringify(Array.from({ length: 20 }, (_, i) => ({ id: i, status: 'placed', sku: 'ABC-123' }))));
    const sealed = codec.seal(json);
    assert.equal(sealed[0], 0x01, 'format 0, compression zstd');
    assert.ok(sealed.byteLength < json.byteLength * 0.5);
    assert.deepEqual(Buffer.from(codec.open(sealed)), json);
  });

  it('stores incompressible or tiny data as is', () => {
    const random = Buffer.from(Array.from({ length: 4096 }, () => Math.floor(Math.random() * 256)));
    const sealed = codec.seal(random);
    assert.equal(sealed[0], 0x00, 'no compression: it would not save 10 %');
    assert.deepEqual(Buffer.from(codec.open(sealed)), random);
    assert.equal(codec.seal(Buffer.from('{}'))[0], 0x00);
  });

  it('stores data under MIN_COMPRESS_BYTES as is, without calling zstd, and compresses from there on', () => {
    let compressions = 0;
    const counting = new PayloadCodec(
      {
        compress: (data) => (compressions++, zstd.compress(data)),
        decompress: (data, maxBytes) => zstd.decompress(data, maxBytes),
        decompressInto: (data, maxBytes, allocate) => zstd.decompressInto(data, maxBytes, allocate),
      },
      1 << 20,
    );
    // A typical single event as the server stores it: ~350 bytes, which zstd would shrink by ~16 %.
    const entry = new StreamCodec('/orders/1', counting, undefined).entryPayload([orderPlaced()])(1n);
    assert.ok(entry.byteLength > 300 && entry.byteLength <= MIN_COMPRESS_BYTES, `a ${entry.byteLength}-byte entry`);
    assert.equal(entry[0], 0x00, 'format 0, compression none');
    for (const size of [MIN_COMPRESS_BYTES - 1, MIN_COMPRESS_BYTES]) {
      const sealed = counting.seal(Buffer.alloc(size, 'z'));
      assert.equal(sealed[0], size < MIN_COMPRESS_BYTES ? 0x00 : 0x01, `${size} bytes`);
      assert.deepEqual(Buffer.from(counting.open(sealed)), Buffer.alloc(size, 'z'));
    }
    assert.equal(compressions, 1, 'zstd is called only for the data of MIN_COMPRESS_BYTES');
  });

  it('still reads small entries that earlier versions stored compressed, plain and encrypted', () => {
    // Written by the code before MIN_COMPRESS_BYTES was raised to 512 (commit c3c4b8d): the same
    // 330-byte entry at version 1 of /orders/1, compressed (header 0x01), and compressed then
    // sealed (0x21) with DEK version 1, a key of 32 bytes of 7.
    const key = Buffer.alloc(32, 7);
    const keys: DataKeys = { stream: '/orders/1', activeVersion: 1, key: () => key };
    for (const [base64, dataKeys, head] of [
      [OLD_COMPRESSED_ENTRY, undefined, 0x01],
      [OLD_SEALED_COMPRESSED_ENTRY, keys, 0x21],
    ] as const) {
      const payload = Buffer.from(base64, 'base64');
      assert.equal(payload[0], head);
      const entry = new StreamCodec('/orders/1', codec, dataKeys).decodeEntry({ version: 1n, recordedAt: new Date(0), payload });
      assert.equal(entry.events[0]?.id, '01900000-0000-7000-8000-000000000001');
      assert.match(Buffer.from(entry.events[0]?.data ?? []).toString(), /^\{"orderId":"ord-1000001",/);
    }
  });

  it('refuses unknown formats and methods instead of guessing', () => {
    assert.throws(() => codec.open(Uint8Array.of(0x30, 1, 2)), CorruptDataError);
    assert.throws(() => codec.open(Uint8Array.of(0x0f, 1, 2)), CorruptDataError);
    assert.throws(() => codec.open(new Uint8Array()), CorruptDataError);
  });

  it('refuses a frame that would decompress past the limit, before allocating it', () => {
    const big = Buffer.alloc(2 << 20, 'a');
    const sealed = new PayloadCodec(zstd, 4 << 20).seal(big);
    assert.ok(sealed.byteLength < 1000, 'a tiny frame that expands to 2 MiB');
    assert.throws(() => codec.open(sealed), /over the 1048576 limit/);
  });

  it('refuses a corrupt zstd frame', () => {
    const sealed = codec.seal(Buffer.alloc(1000, 'b'));
    const broken = Uint8Array.from(sealed);
    broken.fill(0xff, 6, 12);
    assert.throws(() => codec.open(broken), CorruptDataError);
  });

  it('encrypts bound to the position: another key or position does not decrypt', () => {
    const key = randomBytes(32);
    const json = Buffer.from(JSON.stringify({ secret: 'plaintext-marker', padding: 'x'.repeat(600) }));
    const here = Buffer.from('stream /a version 1');
    const sealed = codec.seal(json, { dekVersion: 7, key, associatedData: here });
    assert.equal(sealed[0], 0x21, 'format 2 (encrypted, header authenticated), compression zstd');
    assert.equal(Buffer.from(sealed).readUInt32BE(1), 7, 'the DEK version follows the header');
    assert.ok(!Buffer.from(sealed).includes('plaintext-marker'));
    assert.deepEqual(Buffer.from(codec.open(sealed, () => key, here)), json);
    assert.throws(() => codec.open(sealed, () => key, Buffer.from('stream /a version 2')), /does not decrypt/);
    assert.throws(() => codec.open(sealed, () => randomBytes(32), here), /does not decrypt/);
    assert.throws(() => codec.open(sealed), /no keyring/);
  });

  it('opens into the view it asks for, plain, compressed or encrypted, and makes the position only for an encrypted payload', () => {
    const key = randomBytes(32);
    const json = Buffer.from(JSON.stringify({ status: 'placed', padding: 'x'.repeat(600) }));
    let positions = 0;
    const here = () => {
      positions++;
      return Buffer.from('stream /a version 1');
    };
    for (const [sealed, keys, positionsMade] of [
      [codec.seal(Buffer.from('{}')), undefined, 0], // plain, uncompressed
      [codec.seal(json), undefined, 0], // plain, compressed
      [codec.seal(json, { dekVersion: 1, key, associatedData: here() }), () => key, 1],
    ] as const) {
      positions = 0;
      const target = Buffer.alloc(1000, 0xee);
      let asked = -1;
      codec.openInto(sealed, keys, here, (size) => target.subarray(3, 3 + (asked = size)));
      assert.deepEqual(target.subarray(3, 3 + asked), Buffer.from(codec.open(sealed, keys, here)));
      assert.equal(target[2], 0xee);
      assert.equal(target[3 + asked], 0xee);
      assert.equal(positions, positionsMade * 2, 'the position is made for encrypted payloads only');
    }
  });

  it('authenticates the whole header: any other header byte or DEK version does not decrypt', () => {
    const key = randomBytes(32);
    const here = Buffer.from('stream /a version 1');
    const json = Buffer.from(JSON.stringify({ padding: 'x'.repeat(600) }));
    const small = Buffer.from('{}');
    for (const sealed of [codec.seal(json, { dekVersion: 1, key, associatedData: here }), codec.seal(small, { dekVersion: 1, key, associatedData: here })]) {
      assert.deepEqual(Buffer.from(codec.open(sealed, () => key, here)).length > 0, true);
      // Every other compression and format nibble of the same ciphertext (unknown ones are refused too).
      for (let head = 0; head < 256; head++) {
        if (head === sealed[0] || head >> 4 === 0) continue;
        const tampered = Uint8Array.from(sealed);
        tampered[0] = head;
        assert.throws(() => codec.open(tampered, () => key, here), CorruptDataError, `header 0x${head.toString(16)}`);
      }
      const otherVersion = Uint8Array.from(sealed);
      Buffer.from(otherVersion.buffer).writeUInt32BE(2, 1);
      assert.throws(() => codec.open(otherVersion, () => key, here), CorruptDataError);
    }
  });

  it('still reads format 1, as earlier versions wrote it (header outside the associated data)', () => {
    const key = randomBytes(32);
    const here = Buffer.from('stream /a version 1');
    const json = Buffer.from(JSON.stringify({ padding: 'y'.repeat(200) }));
    // Format 1 exactly as written before: header, DEK version, then the sealed compressed data.
    const dekVersion = Buffer.alloc(4);
    dekVersion.writeUInt32BE(3);
    const legacy = Buffer.concat([
      Uint8Array.of((FORMAT_ENCRYPTED_V1 << 4) | Compression.Zstd),
      dekVersion,
      seal(key, zstd.compress(json), here),
    ]);
    assert.deepEqual(Buffer.from(codec.open(legacy, (version) => (version === 3 ? key : randomBytes(32)), here)), json);
    // Relabelled as format 2, it does not decrypt: no downgrade either way.
    const relabelled = Uint8Array.from(legacy);
    relabelled[0] = 0x21;
    assert.throws(() => codec.open(relabelled, () => key, here), CorruptDataError);
  });

  it('names the DEK version of both encrypted formats, so a replica knows when to reload its keys', () => {
    const key = randomBytes(32);
    const here = Buffer.from('stream /a version 1');
    const current = codec.seal(Buffer.from('{"a":1}'), { dekVersion: 5, key, associatedData: here });
    assert.equal(codec.dekVersionOf(current), 5);
    const legacy = Uint8Array.from(current);
    legacy[0] = (FORMAT_ENCRYPTED_V1 << 4) | (legacy[0]! & 0x0f);
    assert.equal(codec.dekVersionOf(legacy), 5);
    assert.equal(codec.dekVersionOf(codec.seal(Buffer.from('{"a":1}'))), undefined);
  });

  it('never repeats a nonce, across blocks of pre-drawn random bytes', () => {
    const key = randomBytes(32);
    const here = Buffer.from('stream /a version 1');
    const nonces = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const sealed = seal(key, Buffer.from('same plaintext'), here);
      nonces.add(sealed.subarray(0, NONCE_BYTES).toString('hex'));
      assert.equal(open(key, sealed, here)?.toString(), 'same plaintext');
    }
    assert.equal(nonces.size, 2000);
  });

  it("binds entries to the same associated data as before, whatever the stream's characters", () => {
    // The text earlier versions encoded whole for each entry: stored ciphertexts need these exact bytes.
    for (const stream of ['/orders/1', '/ünïcode/流/🚀', '/a b/c\u0000d']) {
      const contexts = new EntryContexts(stream);
      for (const version of [0n, 1n, 9n, 10n, 123_456_789n, 2n ** 63n - 1n]) {
        const before = new TextEncoder().encode(`eventhorizon/entry\u0000${stream}\u0000${version}`);
        assert.deepEqual(Buffer.from(contexts.at(version)), Buffer.from(before), `${stream} at ${version}`);
      }
    }
  });

  it('round-trips entries with their events', () => {
    const entries = new StreamCodec('/s', codec, undefined);
    const payload = entries.entryPayload([
      { id: 'e1', type: 't', data: Buffer.from('{"a":1}'), contentType: 'application/json', metadata: { k: 'v' }, occurredAt: new Date(5) },
    ]);
    const decoded = entries.decodeEntry({ version: 7n, recordedAt: new Date(9), payload: payload(7n) });
    assert.equal(decoded.version, 7n);
    assert.equal(decoded.recordedAt?.getTime(), 9);
    assert.equal(decoded.events[0]?.id, 'e1');
    assert.deepEqual(decoded.events[0]?.metadata, { k: 'v' });
    assert.equal(decoded.events[0]?.occurredAt?.getTime(), 5);
  });
});

/** A ~300-byte JSON event, as the bench appends them. */
function orderPlaced(): Event {
  const order = {
    orderId: 'ord-1000001',
    customerId: 'cus-004211',
    channel: 'web',
    items: [{ sku: 'SKU-7PS', qty: 2, price: 12.49 }],
    total: 24.98,
    currency: 'EUR',
    shipTo: { street: 'Rua Augusta 12', city: 'Lisbon', country: 'EU' },
    placedAt: '2026-01-01T00:00:00.000Z',
  };
  return {
    id: '01900000-0000-7000-8000-000000000001',
    type: 'order.placed',
    data: Buffer.from(JSON.stringify(order)),
    contentType: 'application/json',
    metadata: {},
    occurredAt: undefined,
  };
}

const OLD_COMPRESSED_ENTRY =
  'ASi1L/1gSgAFCAASTzQwcGmaA/z//2dVVVVV4e+GT0QSveSLysG2V1V/YP+ldUo5TvqhPrISm4Wmd/wTvYJUclaJAzmjdS9GkuQInrkDMzfNPGG8GC+Exg1ylTm18k45KzUyPDbWcLbeiAtpuBt530JIbf3UnxMpWurVI5SE9zFPQkofT+O0fuTstFcQmcdpGuvDF6l01foYS3F1SYNjURYk79+J+umhXy/QxqtXYMX7EZTSWVhzmFe97zJtve/qjK0+pPAJ4KIAgs9FUkMhROcAg/HDsRY/jA0EAiwYARIAOtGv4ZZtkCOMngn7MC6IPqBpQ5yeV/rM/lTjlkXQFIzbA8ZarKWYsMAR';

const OLD_SEALED_COMPRESSED_ENTRY =
  'IQAAAAHfNVi/hIMrKMzYeJzn5h5OwtQCkRkbbcqa2n/17vc7/lTDocDSATFr+cPFD2Z/0zkF+KDazmKbiJqmDg5tW8DF//EpWx1eC9ry7CtmixwmE5ciYa5wP33cUBoS84Fd4+4APOLps//bAdOsRa5UutvQbFRWEdILs3Ok10gqhxC/WlzKwI22WK2Z1RbvODWLbmUomzGogzIeXvKj6KO6+HTePX+na7j4j4MTYA6pplZdnlauYzcD0u8f3DMzTF/KSirAlMiJ1o+ERpMfFGj9Sue8b0u5X2fsBlakWe075CRP4Lc2Qkwf0gi266EzPsdKJ3e1CiRtIELHAhhfky7aXZsrH9/2fjCmsTT1SLVfuhnR29JzPY4SK+T7qWTSbNLIsYsf7ZY+5oo=';
