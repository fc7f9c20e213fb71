import pino, { type Logger } from 'pino';

/**
 * Structured JSON logs on stderr, so stdout stays free for command output. Lines written for a
 * call carry its request id, method and principal: the code that writes them adds its
 * RequestContext (observability/request-context.ts).
 */
export function createLogger(level: string): Logger {
  return pino(
    { level, base: { service: 'eventhorizon' } },
    pino.destination(2),
  );
}
