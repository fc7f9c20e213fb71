import { status } from '@grpc/grpc-js';
import type { Api } from '../../helpers/server';
import { codeOf } from '../support/grpc';
import type { Random } from '../support/random';
import type { AppendAttempt, CreateAttempt, Ledger } from './ledger';

/** The parent of every stream the crash workload writes. */
export const CRASH_ROOT = '/crash';

/** The streams appended to: enough for concurrency across streams, few enough to contend. */
export function crashStreams(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${CRASH_ROOT}/s${String(i).padStart(2, '0')}`);
}

/** What one append call came to. `deduplicated` means the request id had been written before. */
export type SendResult = 'written' | 'deduplicated' | 'refused' | 'unanswered';

/** Sends one append as recorded in the ledger (a retry sends the same) and records the answer. */
export async function sendAppend(eh: Api, ledger: Ledger, attempt: AppendAttempt): Promise<SendResult> {
  try {
    const response = await eh.append({
      stream: attempt.stream,
      requestId: attempt.requestId,
      ...(attempt.expectedVersion !== undefined ? { expectedVersion: attempt.expectedVersion } : {}),
      events: [{ id: attempt.eventId, type: 'crash.append', data: attempt.data, contentType: 'application/json' }],
    });
    ledger.acknowledge(attempt, response.cursor?.version ?? -1n);
    return response.deduplicated ? 'deduplicated' : 'written';
  } catch (error) {
    const code = codeOf(error);
    if (code === status.ABORTED) {
      // Request ids are checked before the expected version: ABORTED means not written.
      ledger.refuse(attempt, code);
      return 'refused';
    }
    // UNAVAILABLE, CANCELLED...: the server died with the call in flight. Whether it was
    // written is unknown: it stays unanswered and is retried after the restart.
    return 'unanswered';
  }
}

/** Sends one CreateStream and records the answer. Returns false when the server is gone. */
export async function sendCreate(eh: Api, ledger: Ledger, attempt: CreateAttempt): Promise<boolean> {
  try {
    const response = await eh.createStream({ stream: attempt.stream });
    ledger.acknowledge(attempt, response.head?.version ?? -1n);
    return true;
  } catch (error) {
    const code = codeOf(error);
    if (code === status.ALREADY_EXISTS) {
      // Only a retry can meet this: the first try was written before the kill.
      ledger.acknowledge(attempt, 0n);
      return true;
    }
    return false;
  }
}

export interface LoadOptions {
  eh: Api;
  ledger: Ledger;
  random: Random;
  round: number;
  streams: string[];
  writers: number;
  /** Probability that an append carries the expected version the client last saw. */
  expectedVersionShare: number;
  /** CreateStream calls to mix in over the round. */
  creates: number;
}

/**
 * Concurrent appends (each with a request id, some with an expected version) and a few
 * CreateStreams, until the server stops answering. Resolves once every writer has stopped.
 */
export async function appendUntilServerDies(options: LoadOptions): Promise<void> {
  const { eh, ledger, random, round } = options;
  let alive = true;
  const writer = async () => {
    while (alive) {
      const stream = random.pick(options.streams);
      const attempt = ledger.newAppend(stream, round, random.chance(options.expectedVersionShare));
      if ((await sendAppend(eh, ledger, attempt)) === 'unanswered') alive = false;
    }
  };
  const creator = async () => {
    for (let k = 0; k < options.creates && alive; k++) {
      await new Promise((resolve) => setTimeout(resolve, random.int(5, 60)));
      const attempt = ledger.newCreate(`${random.pick(options.streams)}/c-${round}-${k}`);
      if (!(await sendCreate(eh, ledger, attempt))) alive = false;
    }
  };
  await Promise.all([...Array.from({ length: options.writers }, writer), creator()]);
}
