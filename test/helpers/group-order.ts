import assert from 'node:assert/strict';

/** One handling of an entry by a member of a consumer group, in the test's clock. */
export interface Handling {
  member: string;
  stream: string;
  version: bigint;
  start: number;
  /** Undefined while running, or for ever when the member's process was killed during it. */
  end: number | undefined;
}

/** What the ordering rules need to know of a test's group beyond its handlings. */
export interface GroupRun {
  /** The server that serves each member. */
  serverOf: (member: string) => string;
  /** When a member's process was killed: a handling it left open ended then. */
  killedMembers: Map<string, number>;
  /** When a server was killed: what its members acked since its last save may be delivered again. */
  killedServers: Map<string, number>;
  /** How long before its kill a server's acks may not have reached the store: its checkpoint interval, the ack's way and the save's. */
  saveLagMs: number;
}

/** What the handlings held beyond one handling per entry. */
export interface GroupOrder {
  /** A version handled again right after itself (a redelivery of an entry not acked): the first handling of each pair. */
  redelivered: Handling[];
  /** Versions handled again after their server was killed (the entry in flight there included). */
  replayed: number;
}

/**
 * Checks the order rules of docs/consumer-groups.md over what members handled: each stream
 * starts at version 0, is never with two members at once, and goes on in version order, a
 * redelivery repeating a version. Only a server's kill may take a stream back further: the next
 * server delivers from the position and progress its last save stored, so it may repeat
 * versions the killed server's member handled lately (within `saveLagMs` of the kill) and only those.
 */
export function checkGroupOrder(handlings: Handling[], run: GroupRun): GroupOrder {
  const origin = Math.min(...handlings.map((h) => h.start));
  const history = (list: Handling[]) =>
    list.map((h) => `${h.member} v${h.version} ${Math.round(h.start - origin)}..${h.end === undefined ? '' : Math.round(h.end - origin)}`).join(', ') +
    ' (ms from the first handling)';
  const redelivered: Handling[] = [];
  let replayed = 0;
  const byStream = new Map<string, Handling[]>();
  for (const handling of handlings) {
    const list = byStream.get(handling.stream) ?? [];
    list.push(handling);
    byStream.set(handling.stream, list);
  }
  for (const [stream, list] of byStream) {
    list.sort((a, b) => a.start - b.start);
    assert.equal(list[0]?.version, 0n, `${stream} starts at version 0`);
    for (let i = 1; i < list.length; i++) {
      const before = list[i - 1];
      const next = list[i];
      if (!before || !next) continue;
      const beforeEnd = before.end ?? run.killedMembers.get(before.member) ?? Number.POSITIVE_INFINITY;
      assert.ok(next.start >= beforeEnd, `${stream}: ${next.member} started v${next.version} while ${before.member} handled v${before.version}; ${history(list)}`);
      if (next.version === before.version + 1n) continue;
      const killedAt = run.killedServers.get(run.serverOf(before.member));
      const afterKill = killedAt !== undefined && next.start >= killedAt && next.version <= before.version;
      if (!afterKill) {
        assert.equal(next.version, before.version, `${stream}: v${next.version} after v${before.version}; ${history(list)}`);
        redelivered.push(before);
        continue;
      }
      for (let version = next.version; version <= before.version; version++) {
        const lost = list.filter((h) => h.member === before.member && h.version === version).at(-1);
        assert.ok(
          lost && (lost.end === undefined || lost.end >= killedAt - run.saveLagMs),
          `${stream}: v${version} handled again after the kill of ${before.member}'s server, though handled long before it; ${history(list)}`,
        );
      }
      replayed += Number(before.version - next.version) + 1;
    }
  }
  return { redelivered, replayed };
}
