/**
 * Prints the top functions of V8 CPU profiles (.cpuprofile, as written by `--cpu-prof DIR`):
 * by self time and by inclusive time. Issue 14 asks for these tops before and after each
 * hot-path change.
 *
 *   node dist/bench/profile-top.js [--top N] [--match TEXT]... FILE_OR_DIR...
 *
 * Several files (or every .cpuprofile in a folder) are summed, so one server's runs read as one.
 * Shares are of the busy samples (all but "(idle)"): a server waiting on its load generator or
 * on fsync is idle, and the question is where its CPU goes. `--match TEXT` (repeatable) also
 * prints the self and inclusive shares of the functions whose name or file contains TEXT (e.g.
 * abort_controller): the evidence that a removed cost is gone.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

interface Totals {
  self: number;
  inclusive: number;
}

function label(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const file = url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, '~/').replace(/^.*\/dist\//, 'dist/');
  return `${functionName || '(anonymous)'} ${file ? `${file}:${lineNumber + 1}` : ''}`.trim();
}

/** Adds one profile's self and inclusive microseconds per function label into `totals`. */
function accumulate(profile: CpuProfile, totals: Map<string, Totals>): number {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const selfById = new Map<number, number>();
  let all = 0;
  profile.samples.forEach((id, index) => {
    // timeDeltas[i] is the time before sample i; the next delta is the better weight, but the
    // difference is one sample interval and the shares are the same.
    const micros = profile.timeDeltas[index] ?? 0;
    selfById.set(id, (selfById.get(id) ?? 0) + micros);
    all += micros;
  });
  for (const [id, micros] of selfById) {
    const node = byId.get(id);
    if (!node) continue;
    const own = totals.get(label(node)) ?? { self: 0, inclusive: 0 };
    own.self += micros;
    totals.set(label(node), own);
    // Inclusive: every distinct function on the stack, once (recursion is not counted twice).
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at);
      if (!frame) break;
      const name = label(frame);
      if (seen.has(name)) continue;
      seen.add(name);
      const entry = totals.get(name) ?? { self: 0, inclusive: 0 };
      entry.inclusive += micros;
      totals.set(name, entry);
    }
  }
  return all;
}

function filesOf(paths: string[]): string[] {
  return paths.flatMap((path) =>
    statSync(path).isDirectory()
      ? readdirSync(path)
          .filter((name) => name.endsWith('.cpuprofile'))
          .map((name) => join(path, name))
      : [path],
  );
}

function main(argv: string[]): void {
  let top = 25;
  const matches: string[] = [];
  const paths: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--top') top = Number(argv[++i]);
    else if (arg === '--match') matches.push(argv[++i] ?? '');
    else paths.push(arg);
  }
  const totals = new Map<string, Totals>();
  let sampled = 0;
  for (const file of filesOf(paths)) sampled += accumulate(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, totals);
  const all = sampled - (totals.get('(idle)')?.self ?? 0);
  const share = (micros: number) => `${((100 * micros) / all).toFixed(1).padStart(5)}%`;
  const print = (title: string, key: keyof Totals, skip: (name: string) => boolean) => {
    console.log(`${title}, share of ${(all / 1e6).toFixed(2)} s busy (${(sampled / 1e6).toFixed(1)} s sampled)`);
    [...totals.entries()]
      .filter(([name]) => !skip(name))
      .sort((a, b) => b[1][key] - a[1][key])
      .slice(0, top)
      .forEach(([name, t]) => console.log(`  ${share(t[key])}  ${name}`));
  };
  print('top self time', 'self', (name) => name === '(idle)');
  // The roots and the idle marker include everything: not informative as inclusive entries.
  print('top inclusive time', 'inclusive', (name) => /^\((root|program|idle|garbage collector)\)/.test(name));
  for (const match of matches) {
    const needle = match.toLowerCase();
    const found = [...totals].filter(([name]) => name.toLowerCase().includes(needle));
    const self = found.reduce((sum, [, t]) => sum + t.self, 0);
    console.log(`matching "${match}": self ${share(self)} in all`);
    found
      .sort((a, b) => b[1].inclusive - a[1].inclusive)
      .slice(0, 8)
      .forEach(([name, t]) => console.log(`  self ${share(t.self)}  inclusive ${share(t.inclusive)}  ${name}`));
  }
}

main(process.argv.slice(2));
