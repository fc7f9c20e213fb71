import { PayloadCodec, type Compressed } from '../codec/payload-codec';
import type { Compressor } from '../codec/compression';
import type { Metrics } from './metrics';

/** A payload codec that counts the bytes it compresses, before and after. */
export class MeteredPayloadCodec extends PayloadCodec {
  constructor(zstd: Compressor, maxDecodedBytes: number, private readonly metrics: Metrics) {
    super(zstd, maxDecodedBytes);
  }

  /** Every entry and snapshot is compressed exactly once, here, before it is framed (and maybe encrypted). */
  override compress(data: Uint8Array): Compressed {
    const compressed = super.compress(data);
    this.metrics.countPayload(data.byteLength, compressed.body.byteLength);
    return compressed;
  }
}
