/**
 * Stream paths: "/" is the root; every other stream is "/" followed by segments separated by "/".
 * The rules live here so the API, the stores and the CLI agree on them.
 */

export const ROOT = '/';
/** The parent of the system streams, reserved for the server itself. */
export const SYSTEM_ROOT = '/$';
export const SYSTEM_SEGMENT = '$';
export const MAX_PATH_BYTES = 1024;
export const MAX_DEPTH = 16;
export const MAX_SEGMENT_LENGTH = 128;

const SEGMENT = /^[A-Za-z0-9._~-]{1,128}$/;

/** Why a path is invalid, or undefined when it is valid. */
export function streamPathProblem(path: string): string | undefined {
  if (path === '') return 'is required';
  if (!path.startsWith('/')) return 'must be an absolute path starting with "/"';
  if (Buffer.byteLength(path, 'utf8') > MAX_PATH_BYTES) return `must be at most ${MAX_PATH_BYTES} bytes`;
  if (path === ROOT) return undefined;
  if (path.endsWith('/')) return 'must not end with "/"';
  const segments = path.slice(1).split('/');
  if (segments.length > MAX_DEPTH) return `must be at most ${MAX_DEPTH} segments deep`;
  for (const [index, segment] of segments.entries()) {
    if (index === 0 && segment === SYSTEM_SEGMENT) continue;
    if (segment === '') return 'must not contain empty segments ("//")';
    if (segment === '.' || segment === '..') return 'must not contain "." or ".." segments';
    if (!SEGMENT.test(segment)) {
      return `segment "${truncate(segment)}" must be 1..${MAX_SEGMENT_LENGTH} characters of [A-Za-z0-9._~-]`;
    }
  }
  return undefined;
}

/** Whether the path names a system stream ("/$" or below it), reserved for the server itself. */
export function isSystemPath(path: string): boolean {
  return path === SYSTEM_ROOT || path.startsWith(`${SYSTEM_ROOT}/`);
}

/** The parent of a valid non-root path. */
export function parentOf(path: string): string {
  const cut = path.lastIndexOf('/');
  return cut === 0 ? ROOT : path.slice(0, cut);
}

/** The ancestors of a valid path, root first, excluding the path itself. */
export function ancestorsOf(path: string): string[] {
  const ancestors: string[] = [];
  for (let current = path; current !== ROOT; ) {
    current = parentOf(current);
    ancestors.unshift(current);
  }
  return ancestors;
}

function truncate(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}
