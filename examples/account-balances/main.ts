/**
 * One process of the account-balances read model: a member of the consumer group
 * "account-balances" that projects the account streams into the shared balances folder and
 * serves it over HTTP. Run it twice (see README.md) and the two share the streams; stop or kill
 * one and the other takes its streams over.
 *
 *   node dist/examples/account-balances/main.js [--server host:port] [--dir folder] [--port n]
 *       [--name name] [--ack-wait-ms n]
 *
 * GET /balances: every account of the folder (the whole read model, whichever process wrote it).
 * GET /status: this process: its member id, partitions, and entries applied and skipped.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { AlreadyExistsError, connect, type EventHorizon } from '@eventhorizon/client';
import { accountIdOf, ACCOUNTS_SUBTREE, BalanceFiles } from './balances';

export const GROUP = 'account-balances';

/** What GET /status answers. */
export interface ProcessStatus {
  name: string;
  memberId: string;
  partitions: number[];
  /** Entries applied to the read model by this process. */
  applied: number;
  /** Entries delivered again after they were applied (by this process or another), skipped. */
  skipped: number;
  /** The accounts this process applied entries of. */
  accounts: string[];
}

/** The account streams' parent and the group; both may exist already (the other process made them). */
async function ensureGroup(client: EventHorizon, ackWaitMs: number): Promise<void> {
  try {
    await client.createStream({ stream: ACCOUNTS_SUBTREE, createParents: true });
  } catch (error) {
    if (!(error instanceof AlreadyExistsError)) throw error;
  }
  try {
    // The ack wait bounds how long a killed process's in-flight streams wait before the other
    // process gets them; a handler here takes milliseconds, so seconds are plenty.
    await client.createConsumerGroup({ name: GROUP, selector: { stream: ACCOUNTS_SUBTREE }, settings: { ackWaitMs, partitions: 16 } });
  } catch (error) {
    if (!(error instanceof AlreadyExistsError)) throw error;
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      server: { type: 'string', default: '127.0.0.1:50051' },
      dir: { type: 'string', default: 'balances' },
      port: { type: 'string', default: '0' },
      name: { type: 'string', default: `balances-${process.pid}` },
      'ack-wait-ms': { type: 'string', default: '10000' },
    },
  });
  const client = connect(values.server);
  const files = new BalanceFiles(values.dir);
  await files.open();
  await ensureGroup(client, Number(values['ack-wait-ms']));

  const status: ProcessStatus = { name: values.name, memberId: '', partitions: [], applied: 0, skipped: 0, accounts: [] };
  const accounts = new Set<string>();
  const consumer = client.consume(
    GROUP,
    async (entry) => {
      if (await files.apply(entry)) {
        status.applied++;
        const accountId = accountIdOf(entry.stream);
        if (accountId !== undefined && !accounts.has(accountId)) {
          accounts.add(accountId);
          status.accounts.push(accountId);
        }
      } else {
        status.skipped++;
      }
    },
    {
      memberName: values.name,
      concurrency: 8, // entries of different streams at once; each stream stays in order
      onEvent: (event) => {
        if (event.kind === 'joined') status.memberId = event.memberId;
        if (event.kind === 'assignment') status.partitions = event.partitions;
        if (event.kind === 'assignment' || event.kind === 'joined') console.log(`${values.name}: ${event.kind} ${JSON.stringify(event)}`);
        if (event.kind === 'handlerFailed') console.error(`${values.name}: ${entryLabel(event.entry)} failed (attempt ${event.attempt}):`, event.error);
      },
    },
  );

  const server = http.createServer((request, response) => {
    const answer = (body: unknown) => response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (request.url === '/status') answer(status);
    else if (request.url === '/balances') files.all().then((all) => answer({ accounts: all }), (error: unknown) => response.writeHead(500).end(String(error)));
    else response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(Number(values.port), '127.0.0.1', resolve));
  console.log(`${values.name}: listening on http://127.0.0.1:${(server.address() as AddressInfo).port}`);

  // A clean stop: leave the group (the other process gets the partitions at once), finish and
  // ack what was delivered, then exit.
  const stop = () => {
    void consumer.stop().then(() => {
      server.close();
      client.close();
      console.log(`${values.name}: stopped after applying ${status.applied} entries`);
    });
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await consumer.done.catch((error: unknown) => {
    console.error(`${values.name}: the consumer ended:`, error);
    process.exitCode = 1;
    server.close();
    client.close();
  });
}

function entryLabel(entry: { stream: string; version: bigint }): string {
  return `${entry.stream}@${entry.version}`;
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
