/**
 * Prints the top functions of V8 CPU profiles (.cpuprofile, as written by `--cpu-prof DIR`):
 * by self time and by inclusive time. Issue 14 asks for these tops before and after each
 * hot-path change.
 *
 *   node dist/bench/profile-top.js [--top N] [--match TEXT]... [--by-file [--calls N]] FILE_OR_DIR...
 *
 * Several files (or every .cpuprofile in a folder) are summed, so one server's runs read as one.
 * Shares are of the busy samples (all but "(idle)"): a server waiting on its load generator or
 * on fsync is idle, and the question is where its CPU goes. `--match TEXT` (repeatable) also
 * prints the self and inclusive shares of the functions whose name or file contains TEXT (e.g.
 * abort_controller): the evidence that a removed cost is gone. `--by-file` also sums the self time
 * per source file (a module, "(garbage collector)", "(program)", …), in µs per call when `--calls N`
 * says how many calls the profile served: set beside the same table of another server (the empty
 * handler), it says which modules an append's extra CPU is spent in.
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

function fileOf(node: ProfileNode): string {
  const file = node.callFrame.url.replace(/^file:\/\//, '');
  // A package's own dist/ folder stays in its name: ~/@bufbuild/protobuf/dist/…, not dist/….
  return file.includes('/node_modules/') ? file.replace(/^.*\/node_modules\//, '~/') : file.replace(/^.*\/dist\//, 'dist/');
}

function label(node: ProfileNode): string {
  const { functionName, lineNumber } = node.callFrame;
  const file = fileOf(node);
  return `${functionName || '(anonymous)'} ${file ? `${file}:${lineNumber + 1}` : ''}`.trim();
}

/** Self time per source file; V8's pseudo-frames, and native functions without a file, by name. */
function selfByFile(totals: Map<string, Totals>): Map<string, number> {
  const files = new Map<string, number>();
  for (const [name, t] of totals) {
    // A label is "function file:line", or just the function's name when it has no file.
    const file = /\s(\S+):\d+$/.exec(name)?.[1] ?? name;
    files.set(file, (files.get(file) ?? 0) + t.self);
  }
  return files;
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
  let byFile = false;
  let calls: number | undefined;
  const matches: string[] = [];
  const paths: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--top') top = Number(argv[++i]);
    else if (arg === '--match') matches.push(argv[++i] ?? '');
    else if (arg === '--by-file') byFile = true;
    else if (arg === '--calls') calls = Number(argv[++i]);
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
  if (byFile) {
    const served = calls !== undefined && calls > 0 ? calls : undefined;
    const perCall = (micros: number) => (served === undefined ? '' : `${(micros / served).toFixed(2).padStart(7)} µs per call  `);
    console.log(`self time by file${served === undefined ? '' : `, per call of ${served}: ${perCall(all).trim()}`}`);
    [...selfByFile(totals)]
      .filter(([file]) => file !== '(idle)')
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .forEach(([file, micros]) => console.log(`  ${share(micros)}  ${perCall(micros)}${file}`));
  }
}

main(process.argv.slice(2));
