/**
 * Spreads a group's partitions over its live members, sticky: each member gets its fair share
 * (⌊P/N⌋, the oldest members one more while P mod N is left), keeps the partitions it has up to
 * that share, and the rest (the excess, and those of gone members) go to whoever has the most
 * room. Members are given in join order, so the result depends only on the inputs.
 */
export function assignPartitions(
  partitions: number,
  members: readonly string[],
  current: ReadonlyMap<number, string>,
): Map<number, string> {
  const result = new Map<number, string>();
  if (members.length === 0) return result;
  const base = Math.floor(partitions / members.length);
  const extra = partitions % members.length;
  const room = new Map<string, number>(members.map((member, index) => [member, base + (index < extra ? 1 : 0)]));
  const unassigned: number[] = [];
  for (let partition = 0; partition < partitions; partition++) {
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
    // The shares add up to `partitions`, so someone always has room.
    if (best === undefined) break;
    result.set(partition, best);
    room.set(best, bestRoom - 1);
  }
  return result;
}
