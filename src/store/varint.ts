import { CorruptDataError } from '../core/errors';

/** An unsigned LEB128 varint of any size (what protobuf writes for uint64, without its 64-bit cap). */
export function encodeVarint(value: bigint): Buffer {
  if (value < 0n) throw new RangeError(`a varint cannot hold ${value}`);
  const out: number[] = [];
  let rest = value;
  do {
    const low = Number(rest & 0x7fn);
    rest >>= 7n;
    out.push(rest > 0n ? low | 0x80 : low);
  } while (rest > 0n);
  return Buffer.from(out);
}

/** Reads varints one after the other out of `bytes`; `what` names the bytes in the error when they end mid-way. */
export class VarintReader {
  private offset = 0;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly what: string,
  ) {}

  get done(): boolean {
    return this.offset >= this.bytes.byteLength;
  }

  next(): bigint {
    let value = 0n;
    for (let shift = 0n; ; shift += 7n) {
      const byte = this.bytes[this.offset++];
      if (byte === undefined) throw new CorruptDataError(`${this.what} end mid-way`);
      value |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return value;
    }
  }

  /** The next `length` bytes as they are. */
  take(length: number): Uint8Array {
    if (this.offset + length > this.bytes.byteLength) throw new CorruptDataError(`${this.what} end mid-way`);
    const taken = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return taken;
  }
}
