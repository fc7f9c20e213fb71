import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { encryptionPaths, encryptionReadStreams, prepareEncryption } from '../../bench/encryption';
import { encryptionBlock } from '../../bench/report';
import type { Figures, Plan } from '../../bench/scenarios';
import { FORMAT_ENCRYPTED, FORMAT_PLAIN } from '../../src/codec/payload-codec';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store';

/**
 * The encryption bench compares two data folders: the figure means something only if the "on"
 * folder really holds encrypted entries and the "off" one plain ones.
 */
describe('bench: encryption cost scenario', () => {
  const plan = { encryptionReadEvents: { single: 20, hundred: 300 }, encryptionConcurrency: 64, entryConcurrency: 16 } as Plan;
  let dir: string;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'eh-bench-encryption-'));
    await prepareEncryption(dir, plan);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  for (const [side, format] of [['off', FORMAT_PLAIN], ['on', FORMAT_ENCRYPTED]] as const) {
    it(`seeds the "${side}" folder with the same streams, stored in format ${format}`, async () => {
      const store = new SqliteStore({ dataDir: encryptionPaths(dir)[side] });
      try {
        for (const spec of encryptionReadStreams(plan)) {
          const page = await store.read(spec.stream, { fromVersion: 1n, direction: 'forward', limit: 1000, maxBytes: 64 * 1024 * 1024 });
          assert.equal(page.entries.length, spec.entries, spec.stream);
          for (const entry of page.entries) assert.equal((entry.payload[0] ?? 0) >> 4, format);
        }
      } finally {
        await store.close();
      }
    });
  }

  it('judges the target on the cost when CPU-bound, and says n/a for what was not measured', () => {
    const figures: Figures = new Map([
      ['encryption.off.read1.cpuUs', 50],
      ['encryption.on.read1.cpuUs', 80],
      ['encryption.cost.read1.cpuBound', 1 - 50 / 80],
      ['encryption.cost.read1.throughput', 0.02],
      ['encryption.cost.read100.cpuBound', 0.04],
    ]);
    const block = encryptionBlock(figures, { ...plan, durationMs: 5000, warmupMs: 1000 }, {
      machine: 'test', node: 'v20', date: 'today', quick: false, runs: 3, priority: 'default', loadAverage: 1, wallSeconds: 10,
    });
    const row = (label: string) => block.split('\n').find((line) => line.startsWith(`| ${label}`)) ?? '';
    assert.match(row('Read, entries of 1 '), /\+2\.0 % \| 50\.0 \/ 80\.0 \| \+37\.5 % \| < 10 % \*\*not met\*\*/);
    assert.match(row('Read, entries of 100 '), /\+4\.0 % \| < 10 % \*\*met\*\*/);
    assert.match(row('Append, 1-event entries'), /n\/a \| < 10 % n\/a/);
  });
});
