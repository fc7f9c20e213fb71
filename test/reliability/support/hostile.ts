import fc from 'fast-check';
import type { DeepPartial, Event } from '../../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';

/**
 * Arbitraries of hostile input for the fuzz suite: valid values mixed with every kind of wrong
 * one, so that each run explores both the paths that write and the paths that must refuse.
 */

/** Streams the fuzz suite creates before it starts, so valid names often hit existing streams. */
export const FUZZ_STREAMS = ['/fuzz', '/fuzz/a', '/fuzz/b'];

/** A stream name and whether it is certainly invalid (then the answer must be INVALID_ARGUMENT). */
export interface StreamName {
  stream: string;
  invalid: boolean;
}

const segmentChar = fc.constantFrom(...'abcXYZ019._~-'.split(''));
const validSegment = fc.stringOf(segmentChar, { minLength: 1, maxLength: 12 }).filter((s) => s !== '.' && s !== '..');

const validName: fc.Arbitrary<StreamName> = fc.oneof(
  fc.constantFrom(...FUZZ_STREAMS),
  fc.array(validSegment, { minLength: 1, maxLength: 4 }).map((segments) => `/fuzz/${segments.join('/')}`),
).map((stream) => ({ stream, invalid: false }));

const invalidName: fc.Arbitrary<StreamName> = fc.oneof(
  fc.constantFrom('', 'relative', '/trailing/', '//', '/a//b', '/a/./b', '/a/..', '/$', '/$/system', '/sp ace', '/tab\t', '/nul\u0000'),
  fc.fullUnicodeString({ minLength: 1, maxLength: 20 }).map((s) => `/ü${s}`),
  fc.string({ minLength: 1, maxLength: 30 }).filter((s) => !s.startsWith('/')),
  fc.integer({ min: 129, max: 300 }).map((n) => `/${'x'.repeat(n)}`), // segment too long
  fc.integer({ min: 1025, max: 70_000 }).map((n) => `/${'a/'.repeat(Math.ceil(n / 2))}a`), // path too long
  fc.integer({ min: 17, max: 40 }).map((n) => `/${Array.from({ length: n }, () => 'd').join('/')}`), // too deep
  fc.constantFrom('/\ud800', '/a/\udfff', '/emoji/😀'), // lone surrogates, astral characters
).map((stream) => ({ stream, invalid: true }));

/** Any stream name: mostly valid, often hostile. */
export const streamName: fc.Arbitrary<StreamName> = fc.oneof({ weight: 3, arbitrary: validName }, { weight: 2, arbitrary: invalidName });

/** Versions across the whole int64 range and its edges; undefined for "not set". */
export const version: fc.Arbitrary<bigint | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.bigInt({ min: 0n, max: 5n }),
  fc.constantFrom(-1n, -(2n ** 63n), 2n ** 63n - 1n, 2n ** 62n, 2n ** 53n + 1n),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
);

/** uint32 page sizes, edges included. */
export const limit: fc.Arbitrary<number> = fc.oneof(
  fc.integer({ min: 0, max: 1200 }),
  fc.constantFrom(0, 1, 1000, 1001, 2 ** 31 - 1, 2 ** 32 - 1),
);

/** Short and long strings of any characters. */
export const anyText: fc.Arbitrary<string> = fc.oneof(
  fc.constant(''),
  fc.string({ maxLength: 20 }),
  fc.fullUnicodeString({ maxLength: 20 }),
  fc.integer({ min: 100, max: 5000 }).map((n) => 'p'.repeat(n)),
);

const contentType = fc.oneof(
  fc.constantFrom('', 'application/json', 'application/octet-stream', 'text/plain; charset=utf-8', 'application/vnd.x+json'),
  fc.constantFrom('json', 'application/', '/json', 'a/b; =', 'a/b;;', `a/${'b'.repeat(300)}`, 'application/json; x=' + '= '.repeat(100)),
  anyText,
);

const data = fc.oneof(
  fc.constant(Buffer.alloc(0)),
  fc.json({ maxDepth: 3 }).map((json) => Buffer.from(json)),
  fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)),
  fc.integer({ min: 1000, max: 20_000 }).map((n) => Buffer.alloc(n, 0x20)), // around the fuzz limits
);

/** Events of every shape: missing type, reserved types, bad ids, bad content, oversized. */
export const event: fc.Arbitrary<DeepPartial<Event>> = fc.record(
  {
    id: fc.oneof(fc.constant(''), fc.constant('same-id'), anyText),
    type: fc.oneof(fc.constantFrom('fuzz.event', '', '$system', 'has space', 'ünï'), anyText),
    data,
    contentType,
    metadata: fc.dictionary(anyText, anyText, { maxKeys: 3 }),
    occurredAt: fc.oneof(fc.constant(undefined), fc.date({ min: new Date(-62135596800000), max: new Date(253402300799999) })),
  },
  { requiredKeys: [] },
);

/** Zero to many events: empty lists and lists over the per-entry limit included. */
export const events: fc.Arbitrary<Array<DeepPartial<Event>>> = fc.oneof(
  fc.array(event, { maxLength: 4 }),
  fc.integer({ min: 20, max: 60 }).map((n) => Array.from({ length: n }, (_, i) => ({ type: 'many', id: `m${i}` }))),
);
