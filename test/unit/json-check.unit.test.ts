import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isJson } from '../../src/api/json-check';

/** What the check replaced: decode strictly, then parse. isJson must agree with it on any bytes. */
const strict = new TextDecoder('utf-8', { fatal: true });
function parses(bytes: Uint8Array): boolean {
  try {
    JSON.parse(strict.decode(bytes));
    return true;
  } catch {
    return false;
  }
}

const utf8 = (text: string) => new TextEncoder().encode(text);

describe('isJson (validation without building values)', () => {
  it('agrees with JSON.parse on chosen cases', () => {
    const cases = [
      '{}', '[]', ' {"a":1} ', '{"a":[1,2,{"b":null}],"c":"d"}', 'true', 'false', 'null', '0', '-0', '1.5e+10', '-1E-2',
      '"x"', '"\\u00e9\\n\\"\\\\\\/\\b\\f\\r\\t"', '"\\ud800"', '"é€😀"', '\ufeff{}', '\ufeff\ufeff{}', '\t\r\n[ ]\n',
      '', ' ', '{', '}', '[1,]', '[,1]', '{"a"}', '{"a":}', '{"a":1,}', '{a:1}', "{'a':1}", '01', '1.', '.5', '+1', '1e', '1e+',
      '-', 'tru', 'nul', 'truex', 'NaN', 'Infinity', '"\\x"', '"\\u12"', '"a\u0001"', '"unterminated', '[1] [2]', '{}{}',
      '[[[[[]]]]]', '{"a":{"b":{"c":[]}}}', '"\u2028"', '\u00a0{}', '[1 2]', '{"a" "b"}', '{"a":1 "b":2}', '[}', '{]',
    ];
    for (const text of cases) assert.equal(isJson(utf8(text)), parses(utf8(text)), JSON.stringify(text));
    assert.equal(isJson(utf8('['.repeat(100_000) + ']'.repeat(100_000))), parses(utf8('['.repeat(100_000) + ']'.repeat(100_000))));
  });

  it('refuses malformed UTF-8 as the fatal decoder does', () => {
    const inString = (...bytes: number[]) => Uint8Array.from([0x22, ...bytes, 0x22]);
    const samples = [
      [0xc0, 0x80], [0xc1, 0xbf], [0xc2, 0x80], [0xdf, 0xbf], [0xe0, 0x80, 0x80], [0xe0, 0xa0, 0x80], [0xed, 0x9f, 0xbf],
      [0xed, 0xa0, 0x80], [0xef, 0xbf, 0xbf], [0xf0, 0x8f, 0xbf, 0xbf], [0xf0, 0x90, 0x80, 0x80], [0xf4, 0x8f, 0xbf, 0xbf],
      [0xf4, 0x90, 0x80, 0x80], [0xf5, 0x80, 0x80, 0x80], [0xff], [0x80], [0xc2], [0xe1, 0x80], [0xf1, 0x80, 0x80],
    ];
    for (const bytes of samples) {
      const data = inString(...bytes);
      assert.equal(isJson(data), parses(data), bytes.map((b) => b.toString(16)).join(' '));
    }
  });

  it('agrees with JSON.parse on generated JSON, near-JSON and random bytes', () => {
    const json = fc
      .oneof(fc.jsonValue(), fc.dictionary(fc.fullUnicodeString(), fc.array(fc.fullUnicodeString(), { maxLength: 3 })))
      .map((value) => JSON.stringify(value, null, 1));
    const mutated = fc
      .tuple(json, fc.nat(), fc.constantFrom('', ',', ']', '}', '"', '\\', ':', ' ', 'e', '-', '0', '\u0000', '\ud800'))
      .map(([text, at, insert]) => text.slice(0, at % (text.length + 1)) + insert + text.slice(at % (text.length + 1) + 1));
    fc.assert(
      fc.property(fc.oneof(json.map(utf8), mutated.map(utf8), fc.uint8Array({ maxLength: 40 })), (bytes) => {
        assert.equal(isJson(bytes), parses(bytes), Buffer.from(bytes).toString('hex'));
      }),
      { numRuns: 3000 },
    );
  });
});
