import { AsyncLocalStorage } from 'node:async_hooks';

/** What the logs of one call carry. */
export interface RequestContext {
  requestId: string;
  method: string;
  /** The authenticated principal, once known. */
  principal?: string;
}

/**
 * The context of the call being served. The logger mixes it into every line, so that an error
 * logged deep in the service still names the request it belongs to.
 */
export const requestContext = new AsyncLocalStorage<RequestContext>();
