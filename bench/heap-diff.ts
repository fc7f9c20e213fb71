import fs from 'node:fs';

/**
 * What grew between two V8 heap snapshots, by constructor: `node dist/bench/heap-diff.js
 * before.heapsnapshot after.heapsnapshot [--per N] [--top K] [--by-retainer]`. Groups every node's self size by
 * its type and name (the constructor for objects, "(closure) f" for functions, "(string)", …)
 * and prints the groups that grew most, divided by N (e.g. the subscriptions opened between the
 * two snapshots). Self sizes, not retained sizes: each object counts once, where it is, so the
 * groups add up to the whole growth. bench/subscription-heap.ts writes such snapshots
 * (`--snapshots DIR`).
 */

interface Group {
  count: number;
  bytes: number;
}

/** Self size and count per "type name" of one snapshot. */
export function groupSnapshot(file: string, byRetainer = false): Map<string, Group> {
  const snapshot = JSON.parse(fs.readFileSync(file, 'utf8')) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } };
    nodes: number[];
    edges: number[];
    strings: string[];
  };
  const { node_fields: fields, node_types: [types], edge_fields: edgeFields, edge_types: [edgeTypes] } = snapshot.snapshot.meta;
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const edgeCountAt = fields.indexOf('edge_count');
  const groups = new Map<string, Group>();
  const { nodes, edges, strings } = snapshot;
  const label = (i: number): string => {
    const type = types[nodes[i + typeAt] as number] ?? '?';
    // Strings and code are told apart by type only: their names are their contents.
    const name = type === 'object' || type === 'closure' || type === 'native' || type === 'hidden' || type === 'object shape'
      ? (strings[nodes[i + nameAt] as number] ?? '?').slice(0, 60)
      : '';
    return `${type} ${name}`;
  };
  // With byRetainer, each node is also keyed by its first strong retainer and the edge's name:
  // "array <- object Foo.bar" tells whose backing store an anonymous array is.
  const retainer = new Map<number, string>();
  if (byRetainer) {
    const edgeWidth = edgeFields.length;
    const edgeTypeAt = edgeFields.indexOf('type');
    const edgeNameAt = edgeFields.indexOf('name_or_index');
    const toAt = edgeFields.indexOf('to_node');
    let edge = 0;
    for (let i = 0; i < nodes.length; i += width) {
      const from = label(i);
      for (let e = 0; e < (nodes[i + edgeCountAt] as number); e++, edge += edgeWidth) {
        const edgeType = edgeTypes[edges[edge + edgeTypeAt] as number];
        if (edgeType === 'weak' || edgeType === 'shortcut') continue;
        const to = edges[edge + toAt] as number;
        if (retainer.has(to)) continue;
        const edgeName = edgeType === 'element' || edgeType === 'hidden' ? '[]' : (strings[edges[edge + edgeNameAt] as number] ?? '?');
        retainer.set(to, `${from}.${edgeName}`);
      }
    }
  }
  for (let i = 0; i < nodes.length; i += width) {
    const key = byRetainer ? `${label(i)} <- ${retainer.get(i) ?? '(none)'}` : label(i);
    const group = groups.get(key) ?? { count: 0, bytes: 0 };
    group.count += 1;
    group.bytes += nodes[i + sizeAt] as number;
    groups.set(key, group);
  }
  return groups;
}

/** The groups that grew from `before` to `after`, largest growth first, per `per` (bytes, count). */
export function heapGrowth(before: Map<string, Group>, after: Map<string, Group>, per: number): { key: string; bytes: number; count: number }[] {
  const rows = [...after].map(([key, group]) => {
    const old = before.get(key) ?? { count: 0, bytes: 0 };
    return { key, bytes: (group.bytes - old.bytes) / per, count: (group.count - old.count) / per };
  });
  return rows.sort((a, b) => b.bytes - a.bytes);
}

function main(): void {
  const [beforeFile, afterFile, ...rest] = process.argv.slice(2);
  if (!beforeFile || !afterFile) throw new Error('usage: heap-diff before.heapsnapshot after.heapsnapshot [--per N] [--top K] [--by-retainer]');
  const option = (name: string, fallback: number) => {
    const at = rest.indexOf(name);
    return at >= 0 ? Number(rest[at + 1]) : fallback;
  };
  const per = option('--per', 1);
  const top = option('--top', 40);
  const byRetainer = rest.includes('--by-retainer');
  const rows = heapGrowth(groupSnapshot(beforeFile, byRetainer), groupSnapshot(afterFile, byRetainer), per);
  const total = rows.reduce((sum, row) => sum + row.bytes, 0);
  process.stdout.write(`total growth ${total.toFixed(0)} bytes per unit\n`);
  for (const row of rows.slice(0, top)) {
    process.stdout.write(`${row.bytes.toFixed(0).padStart(7)} B ${row.count.toFixed(2).padStart(7)} × ${row.key}\n`);
  }
}

if (require.main === module) main();
