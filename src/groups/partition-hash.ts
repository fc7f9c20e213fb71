/**
 * The partition of a stream in a consumer group: FNV-1a (32 bits) of the UTF-8 bytes of its
 * path, modulo the group's partitions. Never change it: a group's stored positions are per
 * partition, and streams moving between partitions would lose their order across the change
 * (docs/consumer-groups.md).
 */
export function partitionOf(stream: string, partitions: number): number {
  return fnv1a32(Buffer.from(stream, 'utf8')) % partitions;
}

const OFFSET_BASIS = 0x811c9dc5; // 2166136261
const PRIME = 0x01000193; // 16777619

/** FNV-1a, 32 bits, as an unsigned integer. */
export function fnv1a32(bytes: Uint8Array): number {
  let hash = OFFSET_BASIS;
  for (const byte of bytes) {
    hash ^= byte;
    hash = Math.imul(hash, PRIME) >>> 0;
  }
  return hash >>> 0;
}
