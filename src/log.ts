import pino, { type Logger } from 'pino';
import { requestContext } from './observability/request-context';

/**
 * Structured JSON logs on stderr, so stdout stays free for command output. Lines written while
 * serving a call carry its request id, method and principal.
 */
export function createLogger(level: string): Logger {
  return pino(
    { level, base: { service: 'eventhorizon' }, mixin: () => ({ ...requestContext.getStore() }) },
    pino.destination(2),
  );
}
