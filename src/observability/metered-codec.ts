import { PayloadCodec } from '../codec/payload-codec';
import type { Compressor } from '../codec/compression';
import type { Metrics } from './metrics';

/** A payload codec that counts the bytes it seals before and after compression. */
export class MeteredPayloadCodec extends PayloadCodec {
  constructor(zstd: Compressor, maxDecodedBytes: number, private readonly metrics: Metrics) {
    super(zstd, maxDecodedBytes);
  }

  override seal(data: Uint8Array): Uint8Array {
    const sealed = super.seal(data);
    this.metrics.payloadBytes.inc({ form: 'raw' }, data.byteLength);
    this.metrics.payloadBytes.inc({ form: 'stored' }, sealed.byteLength);
    return sealed;
  }
}
