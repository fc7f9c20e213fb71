import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';

/** The repository root, from the compiled test folder. */
export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
export const BIN = path.join(REPO_ROOT, 'bin', 'eventhorizon');

/** A free loopback TCP port. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export interface ServerProcess {
  child: ChildProcess;
  address: string;
  output(): string;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
}

/**
 * Runs `eventhorizon serve` as a child process, as `npm start` does, and waits until it serves.
 * A variable given as undefined is left out of the child's environment (its default applies).
 */
export async function spawnServer(env: Record<string, string | undefined>): Promise<ServerProcess> {
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  // No web console unless a test asks: the development default (127.0.0.1:8080) is one port
  // that servers started side by side would contend for.
  const merged = { ...process.env, EH_LISTEN: address, EH_LOG_LEVEL: 'info', EH_METRICS_LISTEN: '127.0.0.1:0', EH_CONSOLE_LISTEN: 'off', ...env };
  const child = spawn(process.execPath, [BIN, 'serve'], {
    cwd: REPO_ROOT,
    env: Object.fromEntries(Object.entries(merged).filter((pair): pair is [string, string] => pair[1] !== undefined)),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 20_000;
  while (!output.includes('"msg":"serving"')) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}:\n${output}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`server did not start:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { child, address, output: () => output, exited };
}

/** A Node script running as a child process, with what it printed (stdout and stderr together). */
export interface ScriptProcess {
  process: ChildProcess;
  output(): string;
  /** The first line printed that matches `pattern`, once there is one (fails if the child exits first). */
  line(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
}

/** Runs a compiled test script (`node SCRIPT ARGS`), for what a test must run in a process of its own. */
export function spawnScript(script: string, args: string[], name = path.basename(script, '.js')): ScriptProcess {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return {
    process: child,
    output: () => output,
    async line(pattern: RegExp, timeoutMs = 60_000): Promise<RegExpMatchArray> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        for (const line of output.split('\n')) {
          const match = pattern.exec(line);
          if (match) return match;
        }
        if (child.exitCode !== null) throw new Error(`${name} exited ${child.exitCode}:\n${output}`);
        if (Date.now() > deadline) throw new Error(`no line matching ${pattern} from ${name}:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
  };
}
