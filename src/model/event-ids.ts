import { randomFillSync } from 'node:crypto';

/** How many events one random tail serves: the counter is 12 bits wide. */
const COUNTER_SPAN = 4096;

/**
 * Random tails are drawn from the CSPRNG 512 at a time (4 KiB), each used once. Why: a
 * randomFillSync of 8 bytes per entry cost about 3% of an Append's server CPU (each call crosses
 * into OpenSSL), as much as a 4 KiB one; crypto.randomUUID pools its bytes the same way.
 */
const TAIL_BYTES = 8;
const randomPool = Buffer.alloc(512 * TAIL_BYTES);
let poolAt = randomPool.length;

/** Copies the next unused random tail into `into` at `offset`. */
function takeRandomTail(into: Buffer, offset: number): void {
  if (poolAt === randomPool.length) {
    randomFillSync(randomPool);
    poolAt = 0;
  }
  randomPool.copy(into, offset, poolAt, poolAt + TAIL_BYTES);
  poolAt += TAIL_BYTES;
}

/**
 * Ids the server gives the events of one entry that came without one: UUIDv7 (RFC 9562) using
 * method 1 of its section 6.2, a dedicated counter: 48 bits of Unix milliseconds, the version,
 * a 12-bit counter (the event's place among the generated ids), the variant, and 62 random bits
 * drawn once for the entry.
 *
 * Why not a random UUIDv4 per event: 122 random bits cost about 20 bytes per event after
 * compression, more than a typical event's JSON does. Ids that share all but their counter
 * compress to a couple of bytes each, and stay unique: a new random tail for every entry (and
 * every 4,096 events), under a millisecond clock.
 */
export class EntryEventIds {
  private readonly bytes = Buffer.alloc(16);
  private issued = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /** The next id, as a lowercase hyphenated UUID string. */
  next(): string {
    const counter = this.issued++ % COUNTER_SPAN;
    if (counter === 0) this.renew();
    const bytes = this.bytes;
    bytes[6] = 0x70 | (counter >> 8);
    bytes[7] = counter & 0xff;
    const hex = bytes.toString('hex');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  /** A new timestamp and random tail. */
  private renew(): void {
    const millis = this.now();
    this.bytes.writeUIntBE(millis, 0, 6);
    takeRandomTail(this.bytes, 8);
    this.bytes[8] = 0x80 | ((this.bytes[8] ?? 0) & 0x3f);
  }
}
