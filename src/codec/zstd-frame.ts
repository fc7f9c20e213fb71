import { CorruptDataError } from '../core/errors';

const ZSTD_MAGIC = 0xfd2fb528;

/**
 * The content size a zstd frame header declares (RFC 8878, section 3.1.1.1), or null when the
 * frame does not record it. Read here for node:zlib, which has no call for it; the size limit
 * is checked against it before anything is allocated.
 */
export function frameContentSize(frame: Uint8Array): number | null {
  if (frame.byteLength < 5) throw new CorruptDataError('truncated zstd frame header');
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  if (view.getUint32(0, true) !== ZSTD_MAGIC) throw new CorruptDataError('not a zstd frame');
  const descriptor = view.getUint8(4);
  const sizeFlag = descriptor >> 6;
  const singleSegment = (descriptor & 0x20) !== 0;
  const dictionaryIdBytes = [0, 1, 2, 4][descriptor & 0x03] ?? 0;
  const sizeBytes = [singleSegment ? 1 : 0, 2, 4, 8][sizeFlag] ?? 0;
  if (sizeBytes === 0) return null;
  const at = 5 + (singleSegment ? 0 : 1) + dictionaryIdBytes;
  if (frame.byteLength < at + sizeBytes) throw new CorruptDataError('truncated zstd frame header');
  switch (sizeBytes) {
    case 1:
      return view.getUint8(at);
    case 2:
      return view.getUint16(at, true) + 256; // the format stores 2-byte sizes minus 256
    case 4:
      return view.getUint32(at, true);
    default:
      // Beyond 2^53 the number is approximate, but it is far over any limit all the same.
      return Number(view.getBigUint64(at, true));
  }
}
