/**
 * What the crash workload asked the server to do, and what the server answered. The checks
 * compare the store against this record: an acknowledged write must be there exactly as
 * acknowledged, a refused one must not be there, an unanswered one may be there once at most.
 */

/** The fate of one request as the client saw it. */
export type Outcome =
  | { kind: 'unanswered' }
  | { kind: 'acknowledged'; version: bigint }
  /** A definite "no" (ABORTED, ALREADY_EXISTS): nothing was written. */
  | { kind: 'refused'; code: number };

/** One append request; retries reuse it, with the same request id and event. */
export interface AppendAttempt {
  stream: string;
  requestId: string;
  /** The single event's id: unique in the whole run, so duplicates are visible in any stream. */
  eventId: string;
  data: Buffer;
  expectedVersion: bigint | undefined;
  outcome: Outcome;
}

/** One CreateStream request. */
export interface CreateAttempt {
  stream: string;
  outcome: Outcome;
}

/** Every request of a crash run, with its latest outcome. */
export class Ledger {
  readonly appends: AppendAttempt[] = [];
  readonly creates: CreateAttempt[] = [];
  private readonly heads = new Map<string, bigint>();
  private sequence = 0;

  /** Records a new append to `stream`, optionally conditioned on the head the client last saw. */
  newAppend(stream: string, round: number, withExpectedVersion: boolean): AppendAttempt {
    const seq = ++this.sequence;
    const attempt: AppendAttempt = {
      stream,
      requestId: `req-${round}-${seq}`,
      eventId: `evt-${round}-${seq}`,
      data: Buffer.from(JSON.stringify({ stream, round, seq, pad: 'x'.repeat(seq % 200) })),
      expectedVersion: withExpectedVersion ? this.heads.get(stream) : undefined,
      outcome: { kind: 'unanswered' },
    };
    this.appends.push(attempt);
    return attempt;
  }

  newCreate(stream: string): CreateAttempt {
    const attempt: CreateAttempt = { stream, outcome: { kind: 'unanswered' } };
    this.creates.push(attempt);
    return attempt;
  }

  acknowledge(attempt: AppendAttempt | CreateAttempt, version: bigint): void {
    attempt.outcome = { kind: 'acknowledged', version };
    if ('requestId' in attempt) this.sawHead(attempt.stream, version);
  }

  refuse(attempt: AppendAttempt | CreateAttempt, code: number): void {
    attempt.outcome = { kind: 'refused', code };
  }

  /** Remembers the newest head the client has seen, for expected-version appends. */
  sawHead(stream: string, version: bigint): void {
    const known = this.heads.get(stream);
    if (known === undefined || version > known) this.heads.set(stream, version);
  }

  unansweredAppends(): AppendAttempt[] {
    return this.appends.filter((a) => a.outcome.kind === 'unanswered');
  }

  unansweredCreates(): CreateAttempt[] {
    return this.creates.filter((c) => c.outcome.kind === 'unanswered');
  }

  /** Counts of outcomes, for the run's report. */
  summary(): Record<Outcome['kind'], number> {
    const counts = { unanswered: 0, acknowledged: 0, refused: 0 };
    for (const attempt of [...this.appends, ...this.creates]) counts[attempt.outcome.kind]++;
    return counts;
  }
}
