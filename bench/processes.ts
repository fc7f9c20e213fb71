import { fork, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { credentials } from '@grpc/grpc-js';
import { EventHorizonClient } from '../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import type { FromWorker, Job, ToWorker, WorkerResult } from './jobs';

/** The repository root (bench/ compiles to dist/bench/). */
export const REPO_ROOT = path.resolve(__dirname, '..', '..');
/**
 * The checkout whose `bin/eventhorizon` the bench serves: this one, or another built checkout named
 * by EH_BENCH_SERVER_ROOT, so that one harness measures two versions of the server (A/B).
 */
const SERVER_ROOT = process.env.EH_BENCH_SERVER_ROOT ? path.resolve(process.env.EH_BENCH_SERVER_ROOT) : REPO_ROOT;

/**
 * Priority of the bench's processes (nice value). The machine is shared: at the default priority
 * other people's compilers and test suites take most of both cores and the figures measure the
 * scheduler. Raising the server's, the baseline's and the load workers' priority alike keeps
 * the comparison fair. Needs root (or CAP_SYS_NICE); without it the bench runs as it is.
 */
export const BENCH_PRIORITY = -20;

/** Gives a bench process the bench's priority when allowed; says whether it could. */
export function raisePriority(pid: number): boolean {
  try {
    os.setPriority(pid, BENCH_PRIORITY);
    return true;
  } catch {
    return false;
  }
}

/** A free loopback port, found by binding port 0 and letting it go. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** Resident memory of a process in bytes, from /proc (Linux). */
export function rssBytes(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  return match ? Number(match[1]) * 1024 : Number.NaN;
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux). */
export function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Samples a process's RSS every `everyMs` until stopped; reports the peak. */
export function rssPeakSampler(pid: number, everyMs = 50) {
  let peak = rssBytes(pid);
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rssBytes(pid));
    } catch {
      // The process ended: the peak so far stands.
    }
  }, everyMs);
  return {
    stop(): number {
      clearInterval(timer);
      return peak;
    },
  };
}

/** A server under test, running in its own process. */
export interface ServerProcess {
  pid: number;
  address: string;
  /** Event Horizon's Prometheus endpoint (host:port), where it counts calls by status code. */
  metricsAddress?: string;
  /** The baseline's count of the appends it answered (it has no metrics endpoint). */
  appendsAnswered?(): Promise<number>;
  stop(): Promise<void>;
}

/** Waits until a gRPC server answers on the address. */
async function waitForServer(address: string, child: ChildProcess, timeoutMs = 30_000): Promise<void> {
  const client = new EventHorizonClient(address, credentials.createInsecure());
  try {
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`server exited with ${String(code)} before serving`)));
      client.waitForReady(Date.now() + timeoutMs, (error) => (error ? reject(error) : resolve()));
    });
  } finally {
    client.close();
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const killed = await Promise.race([exited.then(() => true), sleep(15_000, undefined, { ref: false }).then(() => false)]);
  if (!killed) {
    child.kill('SIGKILL');
    await exited;
  }
}

export interface EventHorizonProcessOptions {
  dataDir: string;
  /** Write a V8 CPU profile of the server into this folder when it exits. */
  cpuProfileDir?: string;
  /**
   * Encryption at rest: the keyring file the server is given (EH_KEYRING_FILE), or null for a
   * server that must not encrypt whatever the bench's own environment says. Undefined inherits
   * the environment, as the other figures always have.
   */
  keyringFile?: string | null;
  /** More settings, over the bench's environment (another store: EH_STORE=dynamodb, ...). */
  env?: Record<string, string>;
}

/**
 * The server's environment: the bench's, with the data folder and the keyring chosen.
 * EH_BENCH_SERVER_NODE_OPTIONS becomes the server's NODE_OPTIONS alone (a V8 setting tried on the
 * server without changing the load workers).
 */
function serverEnv(options: EventHorizonProcessOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, EH_DATA_DIR: options.dataDir, ...options.env };
  const serverNodeOptions = process.env.EH_BENCH_SERVER_NODE_OPTIONS;
  if (serverNodeOptions) env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} ${serverNodeOptions}`.trim();
  if (options.keyringFile !== undefined) {
    delete env.EH_KEYRING;
    delete env.EH_KEYRING_FILE;
    if (options.keyringFile !== null) env.EH_KEYRING_FILE = options.keyringFile;
  }
  return env;
}

/** Starts `eventhorizon serve` as it is deployed: its own process, its own data folder. */
export async function startEventHorizon(options: EventHorizonProcessOptions): Promise<ServerProcess> {
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  // Metrics stay on, as deployed, but on a port of their own: the default one (9464) is taken
  // when two bench servers run side by side, or when someone else's server runs on this machine.
  const metricsAddress = `127.0.0.1:${await freePort()}`;
  const nodeArgs = options.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`] : [];
  const child = spawn(
    process.execPath,
    [
      ...nodeArgs, path.join(SERVER_ROOT, 'bin', 'eventhorizon'), 'serve',
      '--listen', address, '--metrics-listen', metricsAddress, '--log-level', 'warn',
      // As deployed in production: no web console (its development default would be 8080).
      '--console-listen', 'off',
    ],
    { env: serverEnv(options), stdio: ['ignore', 'inherit', 'inherit'] },
  );
  raisePriority(child.pid ?? 0);
  await waitForServer(address, child);
  return { pid: child.pid ?? 0, address, metricsAddress, stop: () => stopChild(child) };
}

/** Starts the baseline server (bench/baseline-server.ts) in its own process. */
export async function startBaseline(): Promise<ServerProcess> {
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const child = fork(path.join(__dirname, 'baseline-server.js'), [address], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  raisePriority(child.pid ?? 0);
  await waitForServer(address, child);
  const appendsAnswered = () =>
    new Promise<number>((resolve, reject) => {
      const onExit = () => reject(new Error('baseline server exited'));
      child.once('exit', onExit);
      child.once('message', (message: { appendsAnswered?: number }) => {
        child.off('exit', onExit);
        if (typeof message.appendsAnswered === 'number') resolve(message.appendsAnswered);
        else reject(new Error(`unexpected message from the baseline server: ${JSON.stringify(message)}`));
      });
      child.send('appends-answered');
    });
  return { pid: child.pid ?? 0, address, appendsAnswered, stop: () => stopChild(child) };
}

/** A load-generating worker process. */
export class Worker {
  private readonly child: ChildProcess;

  constructor() {
    this.child = fork(path.join(__dirname, 'worker.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    raisePriority(this.child.pid ?? 0);
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  private nextMessage(): Promise<FromWorker> {
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`worker exited with ${String(code)}`));
      this.child.once('exit', onExit);
      this.child.once('message', (message: FromWorker) => {
        this.child.off('exit', onExit);
        resolve(message);
      });
    });
  }

  private post(message: ToWorker): void {
    this.child.send(message);
  }

  private static unwrap<T extends WorkerResult>(message: FromWorker): T {
    if (message.type === 'failed') throw new Error(`worker failed: ${message.message}`);
    if (message.type !== 'result') throw new Error(`unexpected worker message ${message.type}`);
    return message.result as T;
  }

  /** Runs a job to its end. The result type is the one the job's kind answers. */
  async run<T extends WorkerResult>(job: Job): Promise<T> {
    const answer = this.nextMessage();
    this.post({ type: 'run', job });
    return Worker.unwrap<T>(await answer);
  }

  /** Starts a job that runs until stopped (subscribe); resolves once it is ready. */
  async start<T extends WorkerResult>(job: Job): Promise<{ stop(): Promise<T> }> {
    const ready = this.nextMessage();
    this.post({ type: 'run', job });
    const first = await ready;
    if (first.type !== 'ready') Worker.unwrap<T>(first);
    return {
      stop: async () => {
        const answer = this.nextMessage();
        this.post({ type: 'stop' });
        return Worker.unwrap<T>(await answer);
      },
    };
  }

  async close(): Promise<void> {
    await stopChild(this.child);
  }
}
