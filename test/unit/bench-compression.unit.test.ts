import assert from 'node:assert/strict';
import { measureCompression } from '../../bench/compression';
import { compressionBlock } from '../../bench/report';
import type { Figures } from '../../bench/scenarios';
import { nodeZstd } from '../../src/codec/zstd-node';

/** The compression section must time every path that loads and say which ones did not. */
describe('bench: compression section', () => {
  it('measures each zstd path that loads here, and reports the targets on the chosen one', async function () {
    this.timeout(60_000);
    const figures: Figures = new Map();
    await measureCompression(figures, 5);
    for (const e of [1, 100]) {
      const wasm = figures.get(`compression.wasm.e${e}.compressUs`);
      assert.ok(wasm !== undefined && wasm > 0, `zstd-codec always loads (${e})`);
      assert.ok((figures.get(`compression.wasm.e${e}.bytes`) ?? 0) < (figures.get(`compression.wasm.e${e}.rawBytes`) ?? 0));
    }
    const block = compressionBlock(figures, { machine: 'm', node: 'v20', date: 'd', quick: true, runs: 1, loadAverage: 0, budgetMs: 5 });
    assert.match(block, /zstd-codec \(WebAssembly\), level 1: the fallback.*\| 1 event \|/);
    // The targets are judged on the codec's policy, and a single event says it was not compressed.
    assert.match(block, /what the server does \| 1 event \| .* \(not compressed by policy: no zstd call\) \|/);
    assert.match(block, /what the server does \| 100 events \| .* \| ≤ 60 µs \*\*(met|not met)\*\* \|/);
    // Whichever paths did not load (node:zlib's on Node 20; zstd-napi where its build failed) are named.
    const absent = block.split('\n').find((line) => line.startsWith('Not available on this machine:')) ?? '';
    assert.equal(absent.includes("node:zlib's zstd (Node 22.15+)"), nodeZstd() === undefined, `node:zlib named as absent: ${absent}`);
    assert.equal(absent.includes('zstd-napi'), !figures.has('compression.native.e1.compressUs'), `zstd-napi named as absent: ${absent}`);
  });
});
