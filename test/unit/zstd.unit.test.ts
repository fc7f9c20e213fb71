import assert from 'node:assert/strict';
import { OrderEvents } from '../../bench/events';
import { chooseZstd, zstdLoader, ZSTD_LEVEL, type Compressor } from '../../src/codec/compression';
import { frameContentSize } from '../../src/codec/zstd-frame';
import { NativeZstd, requireZstdNapi, type ZstdNapiBinding } from '../../src/codec/zstd-native';
import { NodeZlibZstd, nodeZstd, type NodeZstd } from '../../src/codec/zstd-node';
import { wasmZstd } from '../../src/codec/zstd-wasm';
import { CorruptDataError } from '../../src/core/errors';

/** zstd-napi where it installed (an optional dependency); undefined elsewhere. */
function installedNative(): ZstdNapiBinding | undefined {
  try {
    return requireZstdNapi();
  } catch {
    return undefined;
  }
}

const native = installedNative();
const noNative = (): ZstdNapiBinding => {
  throw new Error('no binary for this platform');
};

/** node:zlib's zstd API played by zstd-napi, so the node:zlib path is tested on Node 20 too. */
function nodeZstdOver(binding: ZstdNapiBinding): NodeZstd {
  const codec = new NativeZstd(binding, ZSTD_LEVEL);
  return {
    constants: { ZSTD_c_compressionLevel: 100 },
    zstdCompressSync: (data) => codec.compress(data),
    zstdDecompressSync: (data, { maxOutputLength }) => codec.decompress(data, maxOutputLength),
  };
}

/** A ~300-byte JSON event, and 100 of them in one payload, as entries store them. */
const events = new OrderEvents(3);
const oneEvent = events.nextJson();
const hundredEvents = Buffer.concat(Array.from({ length: 100 }, () => events.nextJson()));

/** A frame header declaring `size` bytes (8-byte size field, single segment), then one empty raw block. */
function frameDeclaring(size: bigint): Uint8Array {
  const frame = Buffer.alloc(4 + 1 + 8 + 3);
  frame.writeUInt32LE(0xfd2fb528, 0);
  frame[4] = 0xe0; // content size in 8 bytes, single segment
  frame.writeBigUInt64LE(size, 5);
  frame[13] = 0x01; // last block, raw, 0 bytes
  return frame;
}

/** A frame header without a content size (as streaming compression writes), then one empty raw block. */
function withoutSize(): Uint8Array {
  return Uint8Array.of(0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x00, 0x01, 0x00, 0x00);
}

describe('zstd', () => {
  let wasm: Compressor;
  const paths: Array<{ name: string; get: () => Compressor }> = [];
  before(async () => {
    wasm = await wasmZstd(ZSTD_LEVEL);
  });
  paths.push({ name: 'wasm (zstd-codec)', get: () => wasm });
  if (native) {
    paths.push({ name: 'native (zstd-napi)', get: () => new NativeZstd(native, ZSTD_LEVEL) });
    paths.push({ name: 'node:zlib API (played by zstd-napi)', get: () => new NodeZlibZstd(nodeZstdOver(native), ZSTD_LEVEL) });
  }
  const realNodeZstd = nodeZstd();
  if (realNodeZstd) paths.push({ name: 'node:zlib', get: () => new NodeZlibZstd(realNodeZstd, ZSTD_LEVEL) });

  (native ? it : it.skip)('chooses the native binding where zstd-napi is installed', async () => {
    const choice = await chooseZstd();
    assert.equal(choice.path, 'native');
    assert.equal(choice.fallbackReason, undefined);
  });

  for (const path of paths) {
    describe(path.name, () => {
      it('round-trips a ~300-byte JSON event and a 100-event payload', () => {
        const zstd = path.get();
        for (const data of [oneEvent, hundredEvents, Buffer.alloc(300_000, 'x')]) {
          const frame = zstd.compress(data);
          assert.ok(frame.byteLength < data.byteLength);
          assert.equal(frameContentSize(frame), data.byteLength, 'every frame records its content size');
          assert.deepEqual(Buffer.from(zstd.decompress(frame, data.byteLength)), data);
        }
      });

      it('reads frames written by zstd-codec, and zstd-codec reads its frames', () => {
        const zstd = path.get();
        for (const data of [oneEvent, hundredEvents]) {
          assert.deepEqual(Buffer.from(zstd.decompress(wasm.compress(data), 1 << 20)), data);
          assert.deepEqual(Buffer.from(wasm.decompress(zstd.compress(data), 1 << 20)), data);
        }
      });

      it('refuses a frame that declares more than the limit, before allocating it', () => {
        const zstd = path.get();
        const frame = zstd.compress(Buffer.alloc(2 << 20, 'a'));
        assert.ok(frame.byteLength < 1000, 'a tiny frame that expands to 2 MiB');
        assert.throws(() => zstd.decompress(frame, 1 << 20), (error) => error instanceof CorruptDataError && /over the 1048576 limit/.test(error.message));
        // 1 TiB declared: refused from the header alone (allocating it would throw a RangeError).
        assert.throws(() => zstd.decompress(frameDeclaring(1n << 40n), 1 << 20), /over the 1048576 limit/);
      });

      it('decompresses into the view it asks for, at an offset of a larger buffer, and asks only within the limit', () => {
        const zstd = path.get();
        const frame = zstd.compress(oneEvent);
        const target = Buffer.alloc(oneEvent.byteLength + 20, 0xee);
        const asked: number[] = [];
        zstd.decompressInto(frame, 1 << 20, (size) => {
          asked.push(size);
          return target.subarray(7, 7 + size);
        });
        assert.deepEqual(asked, [oneEvent.byteLength]);
        assert.deepEqual(target.subarray(7, 7 + oneEvent.byteLength), oneEvent);
        assert.ok(target.subarray(0, 7).every((byte) => byte === 0xee) && target.subarray(7 + oneEvent.byteLength).every((byte) => byte === 0xee), 'nothing written around it');
        assert.throws(
          () => zstd.decompressInto(frameDeclaring(1n << 40n), 1 << 20, () => assert.fail('asked to allocate past the limit')),
          /over the 1048576 limit/,
        );
      });

      it('refuses corrupt, truncated, sizeless and foreign frames with CorruptDataError', () => {
        const zstd = path.get();
        const frame = zstd.compress(hundredEvents);
        const broken = Uint8Array.from(frame);
        broken.fill(0xff, 20, 40);
        for (const bad of [broken, frame.subarray(0, frame.byteLength - 10), frame.subarray(0, 3), withoutSize(), Buffer.from('{"not":"zstd"}'), new Uint8Array()]) {
          assert.throws(() => zstd.decompress(bad, 1 << 20), CorruptDataError);
        }
      });
    });
  }

  describe('frame header', () => {
    it('reads the content size zstd-codec records, in each size field width', () => {
      for (const size of [0, 1, 255, 256, 300, 65_791, 65_792, 300_000]) {
        const frame = wasm.compress(Buffer.alloc(size, 'z'));
        assert.equal(frameContentSize(frame), size, `${size} bytes`);
      }
    });

    it('answers null for a frame that does not record its size, and refuses what is not a frame', () => {
      assert.equal(frameContentSize(withoutSize()), null);
      assert.throws(() => frameContentSize(Buffer.from('{"a":1}')), CorruptDataError);
      assert.throws(() => frameContentSize(frameDeclaring(5n).subarray(0, 8)), CorruptDataError);
    });
  });

  describe('fallback', () => {
    it('falls back to zstd-codec when the native binding does not load, and says why', async () => {
      const choice = await chooseZstd({ loadNative: noNative, nodeZstd: undefined });
      assert.equal(choice.path, 'wasm');
      assert.match(choice.fallbackReason ?? '', /zstd-napi.*no binary for this platform/);
      assert.deepEqual(Buffer.from(choice.compressor.decompress(choice.compressor.compress(hundredEvents), 1 << 20)), hundredEvents);
    });

    it('refuses a binding that loads but does not round-trip', async () => {
      const broken: ZstdNapiBinding = {
        CCtx: class { compress = (dst: Uint8Array) => (dst.fill(7, 0, 10), 10); },
        DCtx: class { decompress = () => 0; },
        compressBound: (size) => size + 64,
        getFrameContentSize: () => null,
      };
      const choice = await chooseZstd({ loadNative: () => broken, nodeZstd: undefined });
      assert.equal(choice.path, 'wasm');
      assert.match(choice.fallbackReason ?? '', /unavailable/);
    });

    (native ? it : it.skip)("takes node:zlib's zstd next, where the runtime has it", async () => {
      const choice = await chooseZstd({ loadNative: noNative, nodeZstd: nodeZstdOver(native as ZstdNapiBinding) });
      assert.equal(choice.path, 'node:zlib');
      assert.match(choice.fallbackReason ?? '', /no binary/);
    });

    it('passes over a node:zlib whose frames do not record their size (a Node without pledgedSrcSize)', async () => {
      const sizeless: NodeZstd = {
        constants: { ZSTD_c_compressionLevel: 100 },
        zstdCompressSync: () => withoutSize(),
        zstdDecompressSync: (data) => data,
      };
      const choice = await chooseZstd({ loadNative: noNative, nodeZstd: sizeless });
      assert.equal(choice.path, 'wasm');
      assert.match(choice.fallbackReason ?? '', /node:zlib's zstd is not usable: its frames do not record their content size/);
    });

    it('reports the fallback once, however many times it is loaded', async () => {
      const load = zstdLoader({ loadNative: noNative, nodeZstd: undefined });
      const warnings: string[] = [];
      const warn = (message: string) => warnings.push(message);
      const [first, second] = await Promise.all([load(warn), load(warn)]);
      assert.equal(await load(warn), first);
      assert.equal(second, first);
      assert.equal(warnings.length, 1);
      assert.match(warnings[0] ?? '', /using wasm, slower than native: .*no binary for this platform/);
    });
  });
});
