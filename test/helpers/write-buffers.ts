import type { Writable } from 'node:stream';
import { ServerWritableStreamImpl } from '@grpc/grpc-js/build/src/server-call';

/** The largest write buffer seen so far; `stop()` uninstalls the watch. */
export interface WriteBufferWatch {
  /** Messages, in the call's objectMode buffer (grpc-js's high-water mark is 16). */
  readonly largestMessages: number;
  stop(): void;
}

/**
 * Watches what grpc-js buffers, on this server process, for the clients of server-streaming calls
 * to `path` (e.g. '/eventhorizon.v1.EventHorizon/Subscribe'): the messages written and not yet
 * taken by HTTP/2, which holds them while the client does not read. That is what grows when the
 * server writes faster than a client reads and ignores write()'s back-pressure; the hub's queue
 * per subscriber cannot grow (it is bounded by construction), so bounding it proves nothing.
 *
 * It wraps write() on grpc-js's server stream class (a deep import: grpc-js exposes no hook), so
 * install it only around one test and stop it in a finally.
 */
export function watchWriteBuffers(path: string): WriteBufferWatch {
  const proto = ServerWritableStreamImpl.prototype as unknown as Writable;
  const hadOwnWrite = Object.prototype.hasOwnProperty.call(proto, 'write');
  // eslint-disable-next-line @typescript-eslint/unbound-method -- called below as original.apply(this, args)
  const original = proto.write;
  let largestMessages = 0;
  proto.write = function (this: ServerWritableStreamImpl<unknown, unknown>, ...args: Parameters<Writable['write']>): boolean {
    const result = original.apply(this, args);
    if (this.getPath() === path) largestMessages = Math.max(largestMessages, this.writableLength);
    return result;
  } as Writable['write'];
  return {
    get largestMessages() {
      return largestMessages;
    },
    stop() {
      if (hadOwnWrite) proto.write = original;
      else delete (proto as Partial<Writable>).write;
    },
  };
}

