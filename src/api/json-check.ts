/**
 * Whether bytes are one JSON text, exactly as `JSON.parse(new TextDecoder('utf-8', { fatal: true })
 * .decode(bytes))` would accept them, without building a string or any value: the Append path
 * checks every event that says it is JSON, and decoding and parsing it built a string and an
 * object tree per event only to throw them away (issue 14).
 *
 * One pass over the bytes: well-formed UTF-8 (no overlong forms, no encoded surrogates, nothing
 * above U+10FFFF, as the fatal decoder requires; a leading byte order mark is skipped, as the
 * decoder does), and RFC 8259 grammar as JSON.parse reads it (whitespace is space, tab, LF and CR;
 * escapes in strings may name lone surrogates). Nesting is kept in a growable byte stack, not in
 * recursion, so deep documents cannot overflow the call stack (JSON.parse takes them too).
 */

const SPACE = 0x20;
const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;

/** Escapes allowed after a backslash, but for u: " \ / b f n r t. */
const SIMPLE_ESCAPES = new Set([0x22, 0x5c, 0x2f, 0x62, 0x66, 0x6e, 0x72, 0x74]);

const TRUE = [0x74, 0x72, 0x75, 0x65];
const FALSE = [0x66, 0x61, 0x6c, 0x73, 0x65];
const NULL = [0x6e, 0x75, 0x6c, 0x6c];

/**
 * The state of the check that runs: module variables and module functions rather than closures
 * made per call, which cost as much as the bytes checked for a typical 300-byte event. A check
 * runs to its end synchronously, so one state serves them all.
 */
const EMPTY = new Uint8Array(0);
let bytes: Uint8Array = EMPTY;
let at = 0;
let end = 0;
/** The nesting stack: the opening byte of each open container, `depth` of them. */
let stack = new Uint8Array(64);
let depth = 0;

function isSpace(byte: number | undefined): boolean {
  return byte === SPACE || byte === LF || byte === CR || byte === TAB;
}

function skipSpace(): void {
  while (at < end && isSpace(bytes[at])) at++;
}

function isDigit(byte: number | undefined): boolean {
  return byte !== undefined && byte >= ZERO && byte <= NINE;
}

function isHex(byte: number | undefined): boolean {
  return byte !== undefined && ((byte >= ZERO && byte <= NINE) || ((byte | 0x20) >= 0x61 && (byte | 0x20) <= 0x66));
}

/** A literal (true, false, null) at `at`; moves past it. */
function literal(word: readonly number[]): boolean {
  for (const byte of word) if (bytes[at++] !== byte) return false;
  return true;
}

/** A number at `at`; moves past it. */
function number(): boolean {
  if (bytes[at] === MINUS) at++;
  if (bytes[at] === ZERO) at++;
  else if (isDigit(bytes[at])) while (isDigit(bytes[at])) at++;
  else return false;
  if (bytes[at] === DOT) {
    at++;
    if (!isDigit(bytes[at])) return false;
    while (isDigit(bytes[at])) at++;
  }
  const e = bytes[at];
  if (e === 0x65 || e === 0x45) {
    at++;
    if (bytes[at] === PLUS || bytes[at] === MINUS) at++;
    if (!isDigit(bytes[at])) return false;
    while (isDigit(bytes[at])) at++;
  }
  return true;
}

/** The continuation byte at `at`, within [low, high]; moves past it. */
function continuation(low = 0x80, high = 0xbf): boolean {
  const byte = bytes[at++];
  return byte !== undefined && byte >= low && byte <= high;
}

/** A string whose opening quote is at `at`; moves past its closing quote. */
function string(): boolean {
  at++;
  for (;;) {
    const byte = bytes[at++];
    if (byte === undefined) return false;
    if (byte === QUOTE) return true;
    if (byte < SPACE) return false;
    if (byte === BACKSLASH) {
      const escape = bytes[at++];
      if (escape === 0x75) {
        if (!(isHex(bytes[at]) && isHex(bytes[at + 1]) && isHex(bytes[at + 2]) && isHex(bytes[at + 3]))) return false;
        at += 4;
      } else if (escape === undefined || !SIMPLE_ESCAPES.has(escape)) return false;
    } else if (byte >= 0x80) {
      // UTF-8 (RFC 3629; table 3-7 of Unicode): the ranges exclude overlongs and surrogates.
      if (byte >= 0xc2 && byte <= 0xdf) {
        if (!continuation()) return false;
      } else if (byte === 0xe0) {
        if (!continuation(0xa0) || !continuation()) return false;
      } else if (byte === 0xed) {
        if (!continuation(0x80, 0x9f) || !continuation()) return false;
      } else if (byte >= 0xe1 && byte <= 0xef) {
        if (!continuation() || !continuation()) return false;
      } else if (byte === 0xf0) {
        if (!continuation(0x90) || !continuation() || !continuation()) return false;
      } else if (byte >= 0xf1 && byte <= 0xf3) {
        if (!continuation() || !continuation() || !continuation()) return false;
      } else if (byte === 0xf4) {
        if (!continuation(0x80, 0x8f) || !continuation() || !continuation()) return false;
      } else return false;
    }
  }
}

function push(container: number): void {
  if (depth === stack.length) {
    const grown = new Uint8Array(stack.length * 2);
    grown.set(stack);
    stack = grown;
  }
  stack[depth++] = container;
}

export function isJson(data: Uint8Array): boolean {
  bytes = data;
  end = data.length;
  at = data[0] === 0xef && data[1] === 0xbb && data[2] === 0xbf ? 3 : 0;
  depth = 0;
  const result = value();
  // Not kept: the bytes belong to their request.
  bytes = EMPTY;
  return result;
}

/** The whole text: values, containers and separators, in a loop. */
function value(): boolean {
  // The grammar as a loop: read a value; then close containers or read the separator that
  // leads to the next value (or, in an object, to the next member's key).
  for (;;) {
    skipSpace();
    const byte = bytes[at];
    if (byte === OPEN_OBJECT || byte === OPEN_ARRAY) {
      at++;
      skipSpace();
      const close = byte === OPEN_OBJECT ? CLOSE_OBJECT : CLOSE_ARRAY;
      if (bytes[at] === close) {
        at++;
      } else {
        push(byte);
        if (byte === OPEN_OBJECT) {
          if (bytes[at] !== QUOTE || !string()) return false;
          skipSpace();
          if (bytes[at++] !== COLON) return false;
        }
        continue;
      }
    } else if (byte === QUOTE) {
      if (!string()) return false;
    } else if (byte === 0x74) {
      if (!literal(TRUE)) return false;
    } else if (byte === 0x66) {
      if (!literal(FALSE)) return false;
    } else if (byte === 0x6e) {
      if (!literal(NULL)) return false;
    } else if (byte === MINUS || isDigit(byte)) {
      if (!number()) return false;
    } else return false;

    // After a value: close what ends here, then expect a comma or the end.
    for (;;) {
      skipSpace();
      if (depth === 0) return at === end;
      const container = stack[depth - 1];
      const next = bytes[at++];
      if (next === COMMA) {
        if (container === OPEN_OBJECT) {
          skipSpace();
          if (bytes[at] !== QUOTE || !string()) return false;
          skipSpace();
          if (bytes[at++] !== COLON) return false;
        }
        break;
      }
      if (next !== (container === OPEN_OBJECT ? CLOSE_OBJECT : CLOSE_ARRAY)) return false;
      depth--;
    }
  }
}
