import path from 'node:path';
import Database from 'better-sqlite3';
import type { Event } from '../../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import type { Api } from '../../helpers/server';
import type { Ledger } from './ledger';

/**
 * The crash checks. Each returns a list of problems (empty means it holds), so that a failing
 * round reports every broken guarantee at once.
 */

interface StreamRow {
  id: bigint;
  path: string;
  parent_id: bigint | null;
  head: bigint;
  child_count: bigint;
}

/**
 * Reads the database file as left by the kill, with a read-only connection of its own: no server
 * code, no recovery by the server. Checks the structure and the acknowledged request ids.
 */
export function checkDatabaseFile(dataDir: string, ledger: Ledger): string[] {
  const problems: string[] = [];
  const db = new Database(path.join(dataDir, 'eventhorizon.sqlite'), { readonly: true, fileMustExist: true });
  db.defaultSafeIntegers(true);
  try {
    const streams = db.prepare<[], StreamRow>('SELECT id, path, parent_id, head, child_count FROM streams').all();
    const byId = new Map(streams.map((s) => [s.id, s]));
    const byPath = new Map(streams.map((s) => [s.path, s]));
    const versions = db.prepare<[bigint], { n: bigint; lo: bigint | null; hi: bigint | null }>(
      'SELECT count(*) AS n, min(version) AS lo, max(version) AS hi FROM entries WHERE stream_id = ?',
    );
    const childCount = db.prepare<[bigint], { n: bigint }>('SELECT count(*) AS n FROM streams WHERE parent_id = ?');
    for (const stream of streams) {
      const { n, lo, hi } = versions.get(stream.id) ?? { n: 0n, lo: null, hi: null };
      // Gapless from 0 to the head: the count, the smallest and the largest agree.
      if (lo !== 0n || hi !== stream.head || n !== stream.head + 1n) {
        problems.push(`${stream.path}: versions are not 0..${stream.head} (count ${n}, min ${lo}, max ${hi})`);
      }
      if (stream.path !== '/' && (stream.parent_id === null || !byId.has(stream.parent_id))) {
        problems.push(`${stream.path}: its parent row is missing`);
      }
      const children = childCount.get(stream.id)?.n ?? 0n;
      if (children !== stream.child_count) {
        problems.push(`${stream.path}: child_count ${stream.child_count} but ${children} child rows`);
      }
    }
    const duplicates = db
      .prepare<[], { request_id: string; n: bigint }>(
        'SELECT request_id, count(*) AS n FROM entries WHERE request_id IS NOT NULL GROUP BY stream_id, request_id HAVING n > 1',
      )
      .all();
    for (const d of duplicates) problems.push(`request id ${d.request_id} written ${d.n} times`);

    const entryAt = db.prepare<[bigint, bigint], { request_id: string | null }>(
      'SELECT request_id FROM entries WHERE stream_id = ? AND version = ?',
    );
    const byRequestId = db.prepare<[bigint, string], { version: bigint }>(
      'SELECT version FROM entries WHERE stream_id = ? AND request_id = ?',
    );
    for (const attempt of ledger.appends) {
      const stream = byPath.get(attempt.stream);
      if (!stream) {
        problems.push(`${attempt.stream}: stream row missing`);
        continue;
      }
      if (attempt.outcome.kind === 'acknowledged') {
        const row = entryAt.get(stream.id, attempt.outcome.version);
        if (row?.request_id !== attempt.requestId) {
          problems.push(`${attempt.requestId}: acknowledged at ${attempt.stream}@${attempt.outcome.version}, found ${row ? `request id ${row.request_id}` : 'no entry'}`);
        }
      } else if (attempt.outcome.kind === 'refused' && byRequestId.get(stream.id, attempt.requestId)) {
        problems.push(`${attempt.requestId}: refused, yet written`);
      }
    }
    for (const create of ledger.creates) {
      if (create.outcome.kind === 'acknowledged' && !byPath.has(create.stream)) {
        problems.push(`${create.stream}: creation acknowledged, stream missing`);
      }
    }
  } finally {
    db.close();
  }
  return problems;
}

/** Every entry of a stream, read through the API a page at a time. */
export async function readAll(eh: Api, stream: string): Promise<{ versions: bigint[]; events: Map<bigint, Event[]>; head: bigint }> {
  const versions: bigint[] = [];
  const events = new Map<bigint, Event[]>();
  let from = 0n;
  let head = -1n;
  for (;;) {
    const page = await eh.read({ stream, fromVersion: from, limit: 1000 });
    head = page.headVersion;
    for (const entry of page.entries) {
      versions.push(entry.version);
      events.set(entry.version, entry.events);
    }
    if (!page.more) break;
    from = page.nextVersion;
  }
  return { versions, events, head };
}

/**
 * Reads everything back through a freshly started server: every acknowledged append holds exactly
 * the acknowledged event at the acknowledged version, no event was written twice (retries
 * included), refused appends are absent, versions are gapless, and each parent's
 * `$stream.child-created` entries name exactly its listed children.
 */
export async function checkThroughApi(eh: Api, parents: string[], ledger: Ledger): Promise<string[]> {
  const problems: string[] = [];
  const seenEvents = new Map<string, string>();
  const contents = new Map<string, Map<bigint, Event[]>>();
  const streams = new Set([...parents, ...ledger.appends.map((a) => a.stream)]);
  for (const stream of streams) {
    const { versions, events, head } = await readAll(eh, stream);
    contents.set(stream, events);
    versions.forEach((v, i) => {
      if (v !== BigInt(i)) problems.push(`${stream}: version ${v} at position ${i}`);
    });
    if (versions.length !== Number(head) + 1) problems.push(`${stream}: ${versions.length} entries, head ${head}`);
    for (const [version, list] of events) {
      for (const event of list) {
        const where = `${stream}@${version}`;
        const earlier = seenEvents.get(event.id);
        if (earlier) problems.push(`event ${event.id} stored twice: ${earlier} and ${where}`);
        seenEvents.set(event.id, where);
      }
    }
  }
  for (const attempt of ledger.appends) {
    if (attempt.outcome.kind === 'acknowledged') {
      const event = contents.get(attempt.stream)?.get(attempt.outcome.version)?.[0];
      if (event?.id !== attempt.eventId || !Buffer.from(event.data).equals(attempt.data)) {
        problems.push(`${attempt.requestId}: ${attempt.stream}@${attempt.outcome.version} holds ${event ? `event ${event.id}` : 'nothing'}, not ${attempt.eventId} as acknowledged`);
      }
    } else if (attempt.outcome.kind === 'refused' && seenEvents.has(attempt.eventId)) {
      problems.push(`${attempt.requestId}: refused, yet stored at ${seenEvents.get(attempt.eventId)}`);
    }
  }
  for (const parent of parents) {
    const recorded = new Set<string>();
    for (const list of contents.get(parent)?.values() ?? []) {
      for (const event of list) {
        if (event.type === '$stream.child-created') recorded.add((JSON.parse(Buffer.from(event.data).toString()) as { child: string }).child);
      }
    }
    const listed = new Set<string>();
    let pageToken = '';
    do {
      const page = await eh.listChildren({ stream: parent, limit: 1000, pageToken });
      page.children.forEach((c) => listed.add(c));
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
    for (const child of listed) {
      if (!recorded.has(child)) problems.push(`${child}: listed under ${parent} without its child-created entry`);
      const entry0 = (await eh.read({ stream: child, fromVersion: 0n, limit: 1 })).entries[0];
      if (entry0?.version !== 0n || entry0.events[0]?.type !== '$stream.started') problems.push(`${child}: no entry 0`);
    }
    for (const child of recorded) if (!listed.has(child)) problems.push(`${child}: child-created in ${parent} but not listed`);
  }
  return problems;
}
