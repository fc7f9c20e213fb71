/** A command line the command cannot run: printed with the usage, exit code 2. */
export class UsageError extends Error {}

/** Exit codes that say what failed, for scripts. */
export const EXIT = {
  ok: 0,
  /** The command ran and failed (server error, store error, not found). */
  failure: 1,
  /** The command line or configuration is wrong. */
  usage: 2,
  /** The server could not be reached, or is not serving. */
  unavailable: 3,
  /** No or bad API key (UNAUTHENTICATED), or not allowed (PERMISSION_DENIED). */
  denied: 4,
  /** The stream or snapshot does not exist. */
  notFound: 5,
  /** A conflict: wrong expected version, or the stream already exists. */
  conflict: 6,
} as const;
