/**
 * Spreads a group's partitions over its live members, sticky: each member gets its fair share
 * (⌊P/N⌋, the oldest members one more while P mod N is left), keeps the partitions it has up to
 * that share, and the rest (the excess, and those of gone members) go to whoever has the most
 * room. Members are given in join order, so the result depends only on the inputs.
 *
 * `partitions` is a count (partitions 0..n-1) or the list of partitions to spread (across
 * servers: those whose lease this server holds).
 */
export function assignPartitions(
  partitions: number | readonly number[],
  members: readonly string[],
  current: ReadonlyMap<number, string>,
): Map<number, string> {
  const list = typeof partitions === 'number' ? Array.from({ length: partitions }, (_, i) => i) : partitions;
  const result = new Map<number, string>();
  if (members.length === 0) return result;
  const base = Math.floor(list.length / members.length);
  const extra = list.length % members.length;
  const room = new Map<string, number>(members.map((member, index) => [member, base + (index < extra ? 1 : 0)]));
  const unassigned: number[] = [];
  for (const partition of list) {
    const owner = current.get(partition);
    const left = owner === undefined ? undefined : room.get(owner);
    if (owner !== undefined && left !== undefined && left > 0) {
      result.set(partition, owner);
      room.set(owner, left - 1);
    } else {
      unassigned.push(partition);
    }
  }
  for (const partition of unassigned) {
    let best: string | undefined;
    let bestRoom = 0;
    for (const member of members) {
      const left = room.get(member) ?? 0;
      if (left > bestRoom) {
        best = member;
        bestRoom = left;
      }
    }
    // The shares add up to the partitions' count, so someone always has room.
    if (best === undefined) break;
    result.set(partition, best);
    room.set(best, bestRoom - 1);
  }
  return result;
}

/**
 * How many of a group's partitions a server is due: its members' fair share among the live
 * members of every server (docs/consumer-groups.md, "Across servers"). Members are ranked by
 * server id, and each gets ⌊P/N⌋, the first P mod N one more, so every server that sees the same
 * records computes the same shares, and they add up to P.
 */
export function serverShare(partitions: number, serverId: string, servers: ReadonlyArray<{ serverId: string; members: number }>): number {
  const sorted = [...servers].sort((a, b) => (a.serverId < b.serverId ? -1 : a.serverId > b.serverId ? 1 : 0));
  const total = sorted.reduce((sum, server) => sum + server.members, 0);
  if (total === 0) return 0;
  const base = Math.floor(partitions / total);
  const extra = partitions % total;
  let slot = 0;
  let share = 0;
  for (const server of sorted) {
    for (let i = 0; i < server.members; i++, slot++) {
      if (server.serverId === serverId) share += base + (slot < extra ? 1 : 0);
    }
  }
  return share;
}
