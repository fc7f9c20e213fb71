import pino, { type Logger } from 'pino';

/** A server logger whose JSON lines the test reads back, parsed, in the order written. */
export function loggedLines(level: pino.Level): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level }, {
    write(text: string) {
      for (const line of text.split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
    },
  });
  return { logger, lines };
}
