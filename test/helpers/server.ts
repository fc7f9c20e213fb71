import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { credentials, type ServiceError } from '@grpc/grpc-js';
import pino, { type Logger } from 'pino';
import type * as pb from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { EventHorizonClient, type DeepPartial } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { decodeStatusDetails } from '../../clients/ts/src/errors';
import { DEFAULT_CONFIG, DEFAULT_LIMITS, type ServerConfig } from '../../src/config/config';
import { promiseApi } from '../../src/cli/promise-api';
import { startServer, type KeepaliveOptions, type RunningServer } from '../../src/server';
import type { EventStore } from '../../src/store/port';

export interface TestServer {
  server: RunningServer;
  client: EventHorizonClient;
  address: string;
  dataDir: string;
  stop(): Promise<void>;
}

/** Makes a fresh temporary folder, removed by the caller. */
export function tempDir(prefix = 'eh-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * Starts the real server on a free loopback port, with its own data folder, and a real gRPC
 * client connected to it.
 */
export async function startTestServer(
  overrides: Partial<ServerConfig> = {},
  store?: () => EventStore,
  keepalive?: KeepaliveOptions,
  /** The server's logger (silent by default). */
  logger: Logger = pino({ level: 'silent' }),
): Promise<TestServer> {
  const dataDir = overrides.dataDir ?? tempDir();
  const config: ServerConfig = {
    ...DEFAULT_CONFIG,
    listen: '127.0.0.1:0',
    dataDir,
    logLevel: 'silent',
    // Each test server gets its own free metrics port.
    metricsListen: '127.0.0.1:0',
    ...overrides,
    limits: { ...DEFAULT_LIMITS, ...overrides.limits },
  };
  const server = await startServer({
    config,
    logger,
    ...(store ? { store: store() } : {}),
    ...(keepalive ? { keepalive } : {}),
  });
  const client = new EventHorizonClient(server.address, credentials.createInsecure());
  return {
    server,
    client,
    address: server.address,
    dataDir,
    async stop() {
      client.close();
      await server.stop(1000);
      if (!overrides.dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

type Callback<Res> = (error: ServiceError | null, response: Res) => void;

/** Calls a unary method of a grpc-js client and returns a promise of its response. */
export function call<Req, Res>(
  method: (request: Req, callback: Callback<Res>) => unknown,
  request: Req,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    method(request, (error, response) => (error ? reject(error) : resolve(response)));
  });
}

/** Promise-returning unary methods of the API: the CLI's own wrapper, so tests call alike. */
export const api = promiseApi;

export type Api = ReturnType<typeof api>;

/** A JSON event for tests. */
export function jsonEvent(type: string, data: unknown, extra: DeepPartial<pb.Event> = {}): DeepPartial<pb.Event> {
  return { type, data: Buffer.from(JSON.stringify(data)), ...extra };
}

/** The parsed JSON data of an event. */
export function dataOf(event: pb.Event): unknown {
  return JSON.parse(Buffer.from(event.data).toString('utf8'));
}

/** The ErrorInfo and BadRequest details of a failed call. */
export function detailsOf(error: unknown): { code: number; reason: string | undefined; metadata: Record<string, string>; violations: Array<{ field: string; description: string }> } {
  // The client library's decoder is the one implementation of reading status details.
  const details = decodeStatusDetails(error);
  if (!details) throw new Error(`not a gRPC error: ${String(error)}`);
  return { code: details.code, reason: details.reason, metadata: details.metadata, violations: details.violations };
}

/** The error a promise rejects with; throws when it resolves instead. */
export async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to fail');
}

/** Asserts that a promise rejects with a gRPC status code, and returns the error's details. */
export async function rejection(promise: Promise<unknown>, code: number): Promise<ReturnType<typeof detailsOf>> {
  const error = await failure(promise);
  const details = detailsOf(error);
  if (details.code !== code) {
    throw new Error(`expected status ${code}, got ${details.code}: ${(error as Error).message}`);
  }
  return details;
}
