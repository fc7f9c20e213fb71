import { randomBytes } from 'node:crypto';
import { credentials, Metadata } from '@grpc/grpc-js';
import {
  AppendRequest,
  CreateStreamRequest,
  EventHorizonClient,
  ReadRequest,
  type ReadResponse,
} from '../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { entryWrites } from '../src/store/dynamodb/chunks';
import { transactItemSize } from '../src/store/dynamodb/items';
import { tableNames } from '../src/store/dynamodb/tables';
import { dynamoDbLocal, freshTablePrefix } from '../test/helpers/dynamodb-local';
import { cpuSeconds, startEventHorizon, type ServerProcess } from './processes';
import { record, type Bench } from './scenarios';
import { quantile } from './stats';

/**
 * Entries of 1 MiB on both stores (issue 17): Append one at a time and 4 in flight, Read of one
 * entry, and a catch-up Read of the whole stream, against the bench's SQLite server and against a
 * second server process on DynamoDB Local (started here, as the tests start it). Each entry is one
 * event of 1 MiB of random bytes, which zstd cannot shrink: the stored payload is 1 MiB too, so
 * that on DynamoDB it is split into its item and 3 chunk items.
 */

export const LARGE_ENTRY_BYTES = 1 << 20;
/** Appends in flight for the concurrent figure: a group commit of up to 3 such entries on DynamoDB. */
export const LARGE_CONCURRENCY = 4;
export const LARGE_STORES = ['sqlite', 'dynamodb'] as const;

/** A client that takes replies as large as a page of such entries. */
function clientOf(server: ServerProcess): EventHorizonClient {
  return new EventHorizonClient(server.address, credentials.createInsecure(), {
    'grpc.max_receive_message_length': 64 << 20,
    'grpc.max_send_message_length': 64 << 20,
  });
}

function unary<Req, Res>(call: (request: Req, metadata: Metadata, callback: (error: Error | null, response: Res) => void) => unknown, request: Req): Promise<Res> {
  return new Promise((resolve, reject) => call(request, new Metadata(), (error, response) => (error ? reject(error) : resolve(response))));
}

/** The write units AWS bills one append of such an entry: 2 per KB of each item of its transaction. */
export function awsWriteUnitsPerLargeAppend(stream: string): number {
  const writes = entryWrites(tableNames('eventhorizon-'), {
    stream,
    version: 1000n,
    // The codec's header byte before the bytes it could not compress.
    payload: new Uint8Array(LARGE_ENTRY_BYTES + 1),
    recordedAt: new Date(),
    bytesThrough: 1n << 40n,
  });
  const perItem = writes.length > 1 ? 2 : 1;
  return writes.reduce((sum, action) => sum + Math.ceil(transactItemSize(action) / 1024) * perItem, 0);
}

export async function largeEntries(bench: Bench): Promise<void> {
  // Undefined without Java outside CI (in CI it throws): the SQLite half is still measured.
  const local = await dynamoDbLocal();
  if (!local) {
    bench.log(`${'!'.repeat(20)} SKIPPING the DynamoDB half of the large-entry figures: DynamoDB Local needs Java 17`);
    await measure(bench, 'sqlite', bench.server);
    return;
  }
  bench.log('starting a server on DynamoDB Local');
  const dynamodb = await startEventHorizon({
    dataDir: bench.dataDir,
    env: {
      EH_STORE: 'dynamodb',
      EH_DYNAMODB_ENDPOINT: local.endpoint,
      EH_DYNAMODB_REGION: local.connection.region ?? 'us-east-1',
      EH_DYNAMODB_TABLE_PREFIX: freshTablePrefix(),
      EH_DYNAMODB_CREATE_TABLES: 'true',
      AWS_ACCESS_KEY_ID: local.connection.credentials?.accessKeyId ?? 'local',
      AWS_SECRET_ACCESS_KEY: local.connection.credentials?.secretAccessKey ?? 'local',
    },
  });
  try {
    for (const store of LARGE_STORES) {
      await measure(bench, store, store === 'sqlite' ? bench.server : dynamodb);
    }
  } finally {
    await dynamodb.stop();
  }
}

async function measure(bench: Bench, store: (typeof LARGE_STORES)[number], server: ServerProcess): Promise<void> {
  const count = bench.plan.largeEntries;
  const client = clientOf(server);
  const stream = `/bench/run-${bench.run}/large-${store}`;
  const append = (data: Buffer) =>
    unary(client.append.bind(client), AppendRequest.fromPartial({ stream, events: [{ type: 'blob', data, contentType: 'application/octet-stream' }] }));
  const read = (fromVersion: bigint, limit: number) => unary<ReadRequest, ReadResponse>(client.read.bind(client), ReadRequest.fromPartial({ stream, fromVersion, limit }));
  try {
    await unary(client.createStream.bind(client), CreateStreamRequest.fromPartial({ stream, createParents: true }));
    // Made before any figure starts: random bytes take time of the bench's own.
    const payloads = Array.from({ length: count }, () => randomBytes(LARGE_ENTRY_BYTES));
    for (const data of payloads.slice(0, 2)) await append(data);

    bench.log(`${store}: ${count} appends of 1 MiB, one at a time`);
    const appendMs: number[] = [];
    let cpu = cpuSeconds(server.pid);
    let started = performance.now();
    for (const data of payloads) {
      const at = performance.now();
      await append(data);
      appendMs.push(performance.now() - at);
    }
    let seconds = (performance.now() - started) / 1000;
    record(bench.figures, `large.${store}.append`, {
      p50: quantile(appendMs, 0.5),
      p95: quantile(appendMs, 0.95),
      mibPerSecond: count / seconds,
      cpuMs: ((cpuSeconds(server.pid) - cpu) / count) * 1000,
    });

    bench.log(`${store}: ${count} appends of 1 MiB, ${LARGE_CONCURRENCY} in flight`);
    let next = 0;
    started = performance.now();
    await Promise.all(
      Array.from({ length: LARGE_CONCURRENCY }, async () => {
        while (next < count) await append(payloads[next++]!);
      }),
    );
    seconds = (performance.now() - started) / 1000;
    record(bench.figures, `large.${store}.appendConcurrent`, { mibPerSecond: count / seconds });

    bench.log(`${store}: ${count} reads of one entry`);
    const readMs: number[] = [];
    cpu = cpuSeconds(server.pid);
    for (let i = 0; i < count; i++) {
      const version = BigInt(3 + i);
      const at = performance.now();
      const page = await read(version, 1);
      readMs.push(performance.now() - at);
      const got = page.entries[0]?.events[0]?.data;
      if (page.entries[0]?.version !== version || !got || !payloads[i]!.equals(got)) throw new Error(`${store}: entry ${version} did not read back whole`);
    }
    record(bench.figures, `large.${store}.read`, {
      p50: quantile(readMs, 0.5),
      p95: quantile(readMs, 0.95),
      cpuMs: ((cpuSeconds(server.pid) - cpu) / count) * 1000,
    });

    bench.log(`${store}: catch-up read of the stream`);
    let bytes = 0;
    let from = 1n;
    started = performance.now();
    for (;;) {
      const page = await read(from, 1000);
      for (const entry of page.entries) bytes += entry.events.reduce((sum, event) => sum + event.data.byteLength, 0);
      const last = page.entries[page.entries.length - 1];
      if (!page.more || !last) break;
      from = last.version + 1n;
    }
    seconds = (performance.now() - started) / 1000;
    record(bench.figures, `large.${store}.catchUp`, { mibPerSecond: bytes / LARGE_ENTRY_BYTES / seconds });
  } finally {
    client.close();
  }
}
