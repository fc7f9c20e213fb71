import { performance } from 'node:perf_hooks';
import { credentials, Metadata, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import {
  AppendRequest,
  EventHorizonClient,
  ReadRequest,
  SubscribeFeedRequest,
  SubscribeRequest,
} from '../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { connect, DEFAULT_FLOW_CONTROL_WINDOW } from '../clients/ts/src';
import { OrderEvents } from './events';
import type {
  AppendLoadJob,
  AppendLoadResult,
  CatchUpJob,
  CatchUpResult,
  FromWorker,
  Job,
  PacedWriteJob,
  PacedWriteResult,
  SlowConsumerJob,
  SlowConsumerResult,
  SubscribeJob,
  SubscribeResult,
  ToWorker,
  WorkerResult,
} from './jobs';
import { feedEntriesMetadata, firstEventMetadata, readContinuation, readResponseEvents, scanSubscribeFeedResponse, scanSubscribeResponse } from './wire';

/**
 * A load-generating worker process (forked by the orchestrator). It runs one job at a time, sent
 * over IPC, and answers with what it measured, including the CPU it used itself.
 */

/** Metadata key holding the wall-clock time an event was sent, in ms with µs digits. */
export const SENT_AT = 'bench-sent-at';

const SUBSCRIBE_PATH = '/eventhorizon.v1.EventHorizon/Subscribe';
const READ_PATH = '/eventhorizon.v1.EventHorizon/Read';
const SUBSCRIBE_FEED_PATH = '/eventhorizon.v1.EventHorizon/SubscribeFeed';
/**
 * The load workers' grpc-js connections: the TypeScript client's flow-control window (grpc-js's
 * own, HTTP/2's 64 KiB, makes a catch-up wait for a window update every 64 KiB), and room for
 * pages of 100-event entries, which exceed gRPC's default 4 MiB.
 */
const CLIENT_OPTIONS = {
  'grpc.max_receive_message_length': 64 * 1024 * 1024,
  'grpc-node.flow_control_window': DEFAULT_FLOW_CONTROL_WINDOW,
};

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes. */
function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}

function send(message: FromWorker): void {
  process.send?.(message);
}

/** Measures the CPU this process spends between start() and stop(), in cores. */
function cpuMeter() {
  let usage = process.cpuUsage();
  let started = performance.now();
  return {
    start() {
      usage = process.cpuUsage();
      started = performance.now();
    },
    cores(): number {
      const used = process.cpuUsage(usage);
      return (used.user + used.system) / 1000 / (performance.now() - started);
    },
  };
}

function rawBytes(value: Buffer): Buffer {
  return value;
}

function newClient(address: string, ownConnection = false): EventHorizonClient {
  // A local subchannel pool gives the client a connection of its own instead of sharing one.
  const options = ownConnection ? { ...CLIENT_OPTIONS, 'grpc.use_local_subchannel_pool': 1 } : CLIENT_OPTIONS;
  return new EventHorizonClient(address, credentials.createInsecure(), options);
}

let stopRequested: (() => void) | undefined;

async function appendLoad(job: AppendLoadJob): Promise<AppendLoadResult> {
  const client = newClient(job.address);
  const events = new OrderEvents(job.seed);
  // Requests are made up front so that the load generator spends its time on calls.
  const requests = Array.from({ length: 64 }, (_, i) =>
    AppendRequest.fromPartial({
      stream: job.streams[i % job.streams.length] ?? '/',
      events: Array.from({ length: job.eventsPerEntry }, () => events.nextEvent()),
    }),
  );
  const sentEvents = requests.flatMap((request) => request.events);
  const rawJsonBytesPerEvent = sentEvents.reduce((sum, event) => sum + event.data.byteLength, 0) / sentEvents.length;
  const cpu = cpuMeter();
  const latencies: number[] = [];
  let calls = 0;
  let errors = 0;
  let firstError: string | undefined;
  let next = 0;
  const start = performance.now();
  const measureFrom = start + job.warmupMs;
  const end = measureFrom + job.durationMs;
  let measuring = false;

  const loop = async (): Promise<void> => {
    while (performance.now() < end) {
      const request = requests[next++ % requests.length] as AppendRequest;
      const sent = performance.now();
      if (!measuring && sent >= measureFrom) {
        measuring = true;
        cpu.start();
      }
      const error = await new Promise<ServiceError | null>((resolve) => client.append(request, (e) => resolve(e)));
      const done = performance.now();
      if (sent < measureFrom || done > end) continue;
      if (error) {
        errors++;
        firstError ??= error.message;
      } else {
        calls++;
        latencies.push(done - sent);
      }
    }
  };
  await Promise.all(Array.from({ length: job.concurrency }, loop));
  const cpuCores = cpu.cores();
  client.close();
  return { calls, errors, seconds: job.durationMs / 1000, latenciesMs: latencies, rawJsonBytesPerEvent, cpuCores, ...(firstError ? { firstError } : {}) };
}

async function catchUp(job: CatchUpJob): Promise<CatchUpResult> {
  const client = newClient(job.address);
  const cpu = cpuMeter();
  const started = performance.now();
  let events = 0;
  let messages = 0;
  if (job.via === 'client') {
    // As an application reads: the client library decodes every entry, and yields them one by one.
    const library = connect(job.address, { channelOptions: CLIENT_OPTIONS });
    try {
      for await (const item of library.subscribe(job.stream, {
        fromVersion: 0n,
        ...(job.maxEntriesPerMessage !== undefined ? { maxEntriesPerMessage: job.maxEntriesPerMessage } : {}),
      })) {
        if (item.kind === 'caughtUp') break;
        events += item.entry.events.length;
        messages++;
      }
    } finally {
      library.close();
    }
  } else if (job.via === 'follow') {
    // As an application follows the feed: the client library decodes every entry.
    const library = connect(job.address, { channelOptions: CLIENT_OPTIONS });
    try {
      for await (const item of library.follow(job.stream, {
        afterPosition: BigInt(job.afterPosition ?? 0),
        ...(job.maxEntriesPerMessage !== undefined ? { maxEntriesPerMessage: job.maxEntriesPerMessage } : {}),
      })) {
        if (item.kind === 'caughtUp') break;
        if (item.kind !== 'entry') continue;
        events += item.entry.events.length;
        messages++;
      }
    } finally {
      library.close();
    }
  } else if (job.via === 'feed') {
    await new Promise<void>((resolve, reject) => {
      const call: ClientReadableStream<Buffer> = client.makeServerStreamRequest(
        SUBSCRIBE_FEED_PATH,
        (request: SubscribeFeedRequest) => Buffer.from(SubscribeFeedRequest.encode(request).finish()),
        rawBytes,
        SubscribeFeedRequest.fromPartial({
          selector: { stream: job.stream },
          afterPosition: BigInt(job.afterPosition ?? 0),
          ...(job.maxEntriesPerMessage !== undefined ? { maxEntriesPerMessage: job.maxEntriesPerMessage } : {}),
        }),
      );
      call.on('data', (message: Buffer) => {
        const scanned = scanSubscribeFeedResponse(message);
        messages++;
        events += scanned.events;
        if (scanned.caughtUp) {
          call.cancel();
          resolve();
        }
      });
      call.on('error', (error: ServiceError) => {
        if (error.code !== 1 /* CANCELLED */) reject(error);
      });
    });
  } else if (job.via === 'subscribe') {
    await new Promise<void>((resolve, reject) => {
      const call: ClientReadableStream<Buffer> = client.makeServerStreamRequest(
        SUBSCRIBE_PATH,
        (request: SubscribeRequest) => Buffer.from(SubscribeRequest.encode(request).finish()),
        rawBytes,
        SubscribeRequest.fromPartial({
          stream: job.stream,
          fromVersion: 0n,
          ...(job.maxEntriesPerMessage !== undefined ? { maxEntriesPerMessage: job.maxEntriesPerMessage } : {}),
        }),
      );
      call.on('data', (message: Buffer) => {
        const scanned = scanSubscribeResponse(message);
        messages++;
        events += scanned.events;
        if (scanned.caughtUp) {
          call.cancel();
          resolve();
        }
      });
      call.on('error', (error: ServiceError) => {
        if (error.code !== 1 /* CANCELLED */) reject(error);
      });
    });
  } else {
    const readPage = (from: number) =>
      new Promise<Buffer>((resolve, reject) =>
        client.makeUnaryRequest(
          READ_PATH,
          (request: ReadRequest) => Buffer.from(ReadRequest.encode(request).finish()),
          rawBytes,
          ReadRequest.fromPartial({ stream: job.stream, fromVersion: BigInt(from), limit: job.readLimit }),
          (error: ServiceError | null, response?: Buffer) =>
            error ? reject(error) : response ? resolve(response) : reject(new Error('Read answered with neither a response nor an error')),
        ),
      );
    let next: Promise<Buffer> | undefined = readPage(0);
    while (next) {
      const page: Buffer = await next;
      // The next page is asked for before this one is looked at, as the TypeScript client's
      // readAll asks for it before handing this one's entries over: the server reads it meanwhile.
      const { more, nextVersion } = readContinuation(page);
      next = more ? readPage(nextVersion) : undefined;
      messages++;
      events += readResponseEvents(page);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const cpuCores = cpu.cores();
  client.close();
  return { events, messages, seconds, cpuCores };
}

async function subscribe(job: SubscribeJob): Promise<SubscribeResult> {
  const clients = Array.from({ length: Math.max(1, job.connections) }, () => newClient(job.address, true));
  const latencies: number[] = [];
  const sentAts: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let pending = job.streams.length;
  const { feed } = job;
  const calls: Array<ClientReadableStream<Buffer>> = [];
  const metadata = new Metadata();
  if (job.apiKey !== undefined) metadata.set('authorization', `Bearer ${job.apiKey}`);
  const cpu = cpuMeter();
  await new Promise<void>((resolve) => {
    if (pending === 0) resolve();
    job.streams.forEach((stream, index) => {
      const client = clients[index % clients.length] as EventHorizonClient;
      let live = false;
      const call: ClientReadableStream<Buffer> = feed
        ? client.makeServerStreamRequest(
            SUBSCRIBE_FEED_PATH,
            (request: SubscribeFeedRequest) => Buffer.from(SubscribeFeedRequest.encode(request).finish()),
            rawBytes,
            SubscribeFeedRequest.fromPartial({
              selector: { stream },
              fromNow: true,
              ...(feed.maxEntriesPerMessage !== undefined ? { maxEntriesPerMessage: feed.maxEntriesPerMessage } : {}),
            }),
            metadata,
          )
        : client.makeServerStreamRequest(
            SUBSCRIBE_PATH,
            (request: SubscribeRequest) => Buffer.from(SubscribeRequest.encode(request).finish()),
            rawBytes,
            SubscribeRequest.fromPartial({ stream }),
            metadata,
          );
      calls.push(call);
      const record = (sentAt: string) => {
        const sent = Number(sentAt);
        latencies.push(wallClockMs() - sent);
        sentAts.push(sent);
      };
      call.on('data', (message: Buffer) => {
        if (!live) {
          if ((feed ? scanSubscribeFeedResponse(message) : scanSubscribeResponse(message)).caughtUp) {
            live = true;
            if (--pending === 0) resolve();
          }
          return;
        }
        if (feed) {
          for (const sentAt of feedEntriesMetadata(message, SENT_AT)) record(sentAt);
        } else {
          const sentAt = firstEventMetadata(message, SENT_AT);
          if (sentAt !== undefined) record(sentAt);
        }
      });
      call.on('error', (error: ServiceError) => {
        if (error.code === 1 /* CANCELLED */) return;
        errors++;
        firstError ??= error.message;
        if (!live && --pending === 0) resolve();
      });
    });
  });
  send({ type: 'ready' });
  cpu.start();
  await new Promise<void>((resolve) => (stopRequested = resolve));
  const cpuCores = cpu.cores();
  for (const call of calls) call.cancel();
  for (const client of clients) client.close();
  return { latenciesMs: latencies, sentAtMs: sentAts, errors, cpuCores, ...(firstError ? { firstError } : {}) };
}

async function pacedWrite(job: PacedWriteJob): Promise<PacedWriteResult> {
  const client = newClient(job.address);
  const events = new OrderEvents(job.seed);
  const cpu = cpuMeter();
  const start = performance.now();
  const total = Math.floor((job.ratePerSecond * job.durationMs) / 1000);
  const intervalMs = 1000 / job.ratePerSecond;
  let calls = 0;
  let errors = 0;
  let firstError: string | undefined;
  const latencies: number[] = [];
  const inFlight: Array<Promise<void>> = [];
  for (let i = 0; i < total; i++) {
    // Open loop: each append leaves on its schedule, whether or not the previous one returned.
    const due = start + i * intervalMs;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    const request = AppendRequest.fromPartial({
      stream: job.streams[i % job.streams.length] ?? '/',
      events: [events.nextEvent({ [SENT_AT]: wallClockMs().toFixed(3) })],
    });
    const sent = performance.now();
    inFlight.push(
      new Promise<void>((resolve) =>
        client.append(request, (error) => {
          if (error) {
            errors++;
            firstError ??= error.message;
          } else {
            calls++;
            latencies.push(performance.now() - sent);
          }
          resolve();
        }),
      ),
    );
  }
  await Promise.all(inFlight);
  const cpuCores = cpu.cores();
  client.close();
  return { calls, errors, latenciesMs: latencies, cpuCores, ...(firstError ? { firstError } : {}) };
}

async function slowConsumer(job: SlowConsumerJob): Promise<SlowConsumerResult> {
  const client = newClient(job.address);
  const cpu = cpuMeter();
  const started = performance.now();
  let events = 0;
  await new Promise<void>((resolve) => {
    const call: ClientReadableStream<Buffer> = client.makeServerStreamRequest(
      SUBSCRIBE_PATH,
      (request: SubscribeRequest) => Buffer.from(SubscribeRequest.encode(request).finish()),
      rawBytes,
      SubscribeRequest.fromPartial({ stream: job.stream, fromVersion: 0n }),
    );
    const finish = () => {
      call.cancel();
      resolve();
    };
    const timer = setTimeout(finish, job.durationMs);
    call.on('data', (message: Buffer) => {
      events += scanSubscribeResponse(message).events;
      // Reading no faster than the allowed rate: pause until the schedule catches up.
      const aheadMs = (events / job.eventsPerSecond) * 1000 - (performance.now() - started);
      if (aheadMs > 1) {
        call.pause();
        setTimeout(() => call.resume(), aheadMs);
      }
    });
    call.on('error', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  const cpuCores = cpu.cores();
  client.close();
  return { events, cpuCores };
}

function run(job: Job): Promise<FromWorker> {
  switch (job.kind) {
    case 'append-load':
      return wrap(appendLoad(job));
    case 'catch-up':
      return wrap(catchUp(job));
    case 'subscribe':
      return wrap(subscribe(job));
    case 'paced-write':
      return wrap(pacedWrite(job));
    case 'slow-consumer':
      return wrap(slowConsumer(job));
  }
}

async function wrap(promise: Promise<WorkerResult>): Promise<FromWorker> {
  try {
    return { type: 'result', result: await promise };
  } catch (error) {
    return { type: 'failed', message: error instanceof Error ? error.message : String(error) };
  }
}

process.on('message', (message: ToWorker) => {
  if (message.type === 'stop') {
    stopRequested?.();
    stopRequested = undefined;
    return;
  }
  // void: run turns every failure into a 'failed' result, so this does not reject.
  void run(message.job).then(send);
});
process.on('disconnect', () => process.exit(0));
