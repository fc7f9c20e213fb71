import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { AppendRequest, type Event } from '../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { raisePriority } from './processes';

/**
 * Unary load from h2load (nghttp2's C HTTP/2 load generator) instead of our Node workers, which
 * top out near 2,800 calls/s on this machine: below what the empty handler answers, so their
 * ratios described the load generator as much as the server.
 *
 * h2load knows HTTP/2, not gRPC: it POSTs one prepared body (a whole gRPC frame) over and over
 * and counts every HTTP 200 as a success, although gRPC reports its errors in a `grpc-status`
 * trailer of a 200 response. What it counts is therefore checked against the servers' own
 * counts (unary-h2load.ts); this module only drives h2load and reads what it prints.
 */

export const H2LOAD = 'h2load';
export const APPEND_PATH = '/eventhorizon.v1.EventHorizon/Append';

/** Whether h2load can be run here (Debian package nghttp2-client). */
export function h2loadAvailable(): boolean {
  return spawnSync(H2LOAD, ['--version'], { stdio: 'ignore' }).status === 0;
}

/** h2load's version line (e.g. "h2load nghttp2/1.52.0"), for the report. */
export function h2loadVersion(): string {
  const result = spawnSync(H2LOAD, ['--version'], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() : 'h2load not found';
}

/** A gRPC message frame: uncompressed flag 0, 4-byte big-endian length, the message (gRPC over HTTP/2, "Length-Prefixed-Message"). */
export function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt8(0, 0);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

/**
 * The body of an Append of `event` to `stream`, as h2load sends it for every call. Without a
 * request id and an expected version the same bytes append a new entry each time (the server
 * gives each event its id), which is what lets one file drive a whole run.
 */
export function appendBody(stream: string, event: Event): Buffer {
  return grpcFrame(AppendRequest.encode(AppendRequest.fromPartial({ stream, events: [event] })).finish());
}

/**
 * What one h2load process printed. The counts and the rate are of the measured duration (the
 * warm-up's calls are not in them); "finished in" is the whole run, warm-up included.
 */
export interface H2loadSummary {
  wallSeconds: number;
  requestsPerSecond: number;
  total: number;
  started: number;
  done: number;
  succeeded: number;
  failed: number;
  errored: number;
  timeout: number;
  /** Responses by status class: 2xx, 3xx, 4xx, 5xx. */
  status: { '2xx': number; '3xx': number; '4xx': number; '5xx': number };
}

const num = (text: string | undefined): number => Number((text ?? '').replace(/,/g, ''));

/** Reads h2load's summary (stdout). Throws when a line it needs is missing. */
export function parseH2loadOutput(text: string): H2loadSummary {
  const finished = /^finished in ([\d.]+)(m?s), ([\d.]+) req\/s/m.exec(text);
  const requests =
    /^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/m.exec(text);
  const status = /^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/m.exec(text);
  if (!finished || !requests || !status) throw new Error(`h2load output not understood:\n${text}`);
  const [, t, unit, rps] = finished;
  const [, total, started, done, succeeded, failed, errored, timeout] = requests;
  return {
    wallSeconds: num(t) / (unit === 'ms' ? 1000 : 1),
    requestsPerSecond: num(rps),
    total: num(total),
    started: num(started),
    done: num(done),
    succeeded: num(succeeded),
    failed: num(failed),
    errored: num(errored),
    timeout: num(timeout),
    status: { '2xx': num(status[1]), '3xx': num(status[2]), '4xx': num(status[3]), '5xx': num(status[4]) },
  };
}

/** The calls of h2load's `--log-file`: their latencies, and when the first began and the last ended. */
export interface H2loadLog {
  latenciesMs: number[];
  /** Microseconds since the epoch. */
  firstStartUs: number;
  lastEndUs: number;
}

/**
 * Reads h2load's `--log-file` (tab-separated: start time µs since the epoch, HTTP status, µs
 * until the end of the response). h2load prints only min, max, mean and sd of its request times;
 * the per-request log gives the percentiles.
 */
export function parseH2loadLog(text: string): H2loadLog {
  const log: H2loadLog = { latenciesMs: [], firstStartUs: Infinity, lastEndUs: -Infinity };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const [start, , micros] = line.split('\t').map(Number);
    if (start === undefined || micros === undefined || !Number.isFinite(start) || !Number.isFinite(micros)) {
      throw new Error(`h2load log line not understood: ${line}`);
    }
    log.latenciesMs.push(micros / 1000);
    log.firstStartUs = Math.min(log.firstStartUs, start);
    log.lastEndUs = Math.max(log.lastEndUs, start + micros);
  }
  return log;
}

/** The marker bash's `time` prints (TIMEFORMAT) after h2load: its user and system CPU seconds. */
const CPU_MARK = 'h2load-cpu';

/** h2load's CPU seconds (user + system), from the wrapper's line on stderr. */
export function parseCpuLine(stderr: string): number {
  const match = new RegExp(`^${CPU_MARK} ([\\d.]+) ([\\d.]+)$`, 'm').exec(stderr);
  if (!match) throw new Error(`h2load CPU time not found in:\n${stderr}`);
  return num(match[1]) + num(match[2]);
}

/** One h2load process: where it connects, with what body, how many calls in flight. */
export interface H2loadJob {
  address: string;
  bodyFile: string;
  logFile: string;
  /** h2load -c: connections. */
  connections: number;
  /** h2load -m: calls in flight per connection. */
  streamsPerConnection: number;
  warmupMs: number;
  durationMs: number;
  /**
   * Paced instead of as fast as answered: one call every 1/N s (an h2load timing script,
   * written next to the log file). Meant for `-c 1 -m 1`: a call still waits for the one before.
   */
  callsPerSecond?: number;
}

export interface H2loadRun {
  summary: H2loadSummary;
  /** The calls of the measured duration. */
  log: H2loadLog;
  /** h2load's own CPU seconds (user + system), warm-up included. */
  cpuSeconds: number;
}

/** h2load's command line for a job (timing-based: warm-up, then the measured duration). */
export function h2loadArgs(job: H2loadJob): string[] {
  return [
    '-c', String(job.connections), '-m', String(job.streamsPerConnection), '-t', '1',
    '--warm-up-time', `${job.warmupMs}ms`, '-D', `${job.durationMs}ms`,
    '-d', job.bodyFile,
    '-H', 'content-type: application/grpc', '-H', 'te: trailers',
    '--log-file', job.logFile,
    // A timing script names the URI on each of its lines.
    ...(job.callsPerSecond === undefined ? [appendUri(job.address)] : ['--timing-script-file', timingScriptFile(job)]),
  ];
}

function appendUri(address: string): string {
  return `http://${address}${APPEND_PATH}`;
}

function timingScriptFile(job: H2loadJob): string {
  return `${job.logFile}.timing`;
}

/**
 * h2load's timing script for a paced job: one line per call, its offset in ms from the start and
 * the URI, for the warm-up and the duration and a second more (h2load stops at the duration).
 */
export function timingScript(job: Pick<H2loadJob, 'address' | 'warmupMs' | 'durationMs'>, callsPerSecond: number): string {
  if (!(callsPerSecond > 0)) throw new Error(`a paced job needs a positive rate, not ${callsPerSecond}`);
  const calls = Math.ceil(((job.warmupMs + job.durationMs) / 1000 + 1) * callsPerSecond);
  const uri = appendUri(job.address);
  return Array.from({ length: calls }, (_, i) => `${((i * 1000) / callsPerSecond).toFixed(3)}\t${uri}\n`).join('');
}

/**
 * Runs h2load to its end. It runs under bash's `time` so that its CPU time (getrusage of the
 * child, which Node does not give) is measured without depending on /usr/bin/time.
 */
export function runH2load(job: H2loadJob): Promise<H2loadRun> {
  // h2load (1.52) appends to a log file that exists: a second run would report the first's calls too.
  fs.rmSync(job.logFile, { force: true });
  if (job.callsPerSecond !== undefined) fs.writeFileSync(timingScriptFile(job), timingScript(job, job.callsPerSecond));
  const child = spawn('bash', ['-c', `TIMEFORMAT='${CPU_MARK} %3U %3S'; time ${H2LOAD} "$@"`, 'h2load-timed', ...h2loadArgs(job)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Inherited from the bench anyway; set again like every other bench process's.
  raisePriority(child.pid ?? 0);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      if (code !== 0) {
        reject(new Error(`h2load exited with ${String(code)}:\n${stdout}\n${stderr}`));
        return;
      }
      try {
        const summary = parseH2loadOutput(stdout);
        const log = parseH2loadLog(fs.readFileSync(job.logFile, 'utf8'));
        // One line per call of the measured duration: any other count means a log of some other run.
        if (log.latenciesMs.length !== summary.done) throw new Error(`h2load logged ${log.latenciesMs.length} calls but reports ${summary.done} done`);
        resolve({ summary, log, cpuSeconds: parseCpuLine(stderr) });
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
  });
}
