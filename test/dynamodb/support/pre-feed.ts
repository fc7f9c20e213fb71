import assert from 'node:assert/strict';
import { UpdateTableCommand, waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import { createDynamoDbClient, type DynamoDbStore } from '../../../src/store/dynamodb/dynamodb-store';
import { tableNames } from '../../../src/store/dynamodb/tables';
import type { FeedEntry } from '../../../src/store/port';
import type { DynamoDbLocal } from '../../helpers/dynamodb-local';

/** Helpers of the feed backfill tests: tables written before the feed existed, and the feed's check. */

export const at = new Date('2026-01-02T03:04:05.678Z');
export const bytes = (text: string) => new Uint8Array(Buffer.from(text));
export const streamsOf = (count: number, tag: string) => Array.from({ length: count }, (_, i) => `/${tag}${i}`);

/**
 * Turns the events table into one of a deployment from before the feed: its DynamoDB stream off,
 * so that what is written next is in no stream (as with the tables of an earlier version).
 */
export async function disableEventsStream(local: DynamoDbLocal, prefix: string): Promise<void> {
  const client = createDynamoDbClient(local.connection);
  try {
    const { events } = tableNames(prefix);
    await client.send(new UpdateTableCommand({ TableName: events, StreamSpecification: { StreamEnabled: false } }));
    await waitUntilTableExists({ client, maxWaitTime: 60, minDelay: 1, maxDelay: 2 }, { TableName: events });
  } finally {
    client.destroy();
  }
}

/** Creates the streams (if `create`) and appends `appends` entries to each, concurrently. */
export async function load(target: DynamoDbStore, streams: string[], appends: number, create = true): Promise<void> {
  if (create) {
    for (const stream of streams) {
      await target.createStream({
        stream,
        parent: '/',
        recordedAt: at,
        startedPayload: bytes(`${stream}@0`),
        childCreatedPayload: (version) => bytes(`/@${version}`),
      });
    }
  }
  await Promise.all(
    streams.map(async (stream) => {
      for (let i = 0; i < appends; i++) {
        await target.append({ stream, payload: (version) => bytes(`${stream}@${version}`), recordedAt: at });
      }
    }),
  );
}

export async function wholeFeed(target: DynamoDbStore): Promise<FeedEntry[]> {
  const entries: FeedEntry[] = [];
  let after = 0n;
  for (;;) {
    const page = await target.readFeed({ after, subtree: { path: '/', descendants: true }, limit: 500, maxBytes: 1 << 22 });
    entries.push(...page.entries);
    if (!page.more) return entries;
    after = page.reached;
  }
}

/**
 * The feed's invariants against the events table: every entry of every stream (and of the root)
 * exactly once, in version order, positions strictly increasing up to the feed's head.
 */
export async function checkFeed(target: DynamoDbStore, streams: string[]): Promise<FeedEntry[]> {
  const feed = await wholeFeed(target);
  for (let i = 1; i < feed.length; i++) {
    assert.ok((feed[i]?.position ?? 0n) > (feed[i - 1]?.position ?? 0n), `positions strictly increase at ${i}`);
  }
  const seen = new Map<string, bigint[]>();
  for (const entry of feed) seen.set(entry.stream, [...(seen.get(entry.stream) ?? []), entry.version]);
  assert.deepEqual([...seen.keys()].sort(), ['/', ...streams].sort(), 'the feed names exactly the streams written');
  for (const stream of ['/', ...streams]) {
    const info = await target.describe(stream);
    assert.ok(info, `${stream} exists`);
    const expected = Array.from({ length: Number(info.headVersion) + 1 }, (_, v) => BigInt(v));
    assert.deepEqual(seen.get(stream), expected, `${stream}: every entry once, in version order`);
  }
  assert.equal(await target.feedHead(), feed[feed.length - 1]?.position ?? 0n);
  return feed;
}
