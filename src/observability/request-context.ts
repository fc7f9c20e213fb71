import type { Metadata } from '@grpc/grpc-js';

/** What the logs of one call carry. */
export interface RequestContext {
  requestId: string;
  method: string;
  /** The authenticated principal, once known. */
  principal?: string;
}

/**
 * The contexts of the calls being served, by their request metadata: grpc-js hands the Metadata
 * object that the observability interceptor passes on to the next interceptor (auth) and then to
 * the handler (`call.metadata`), so each finds the call's context and puts it in the lines it
 * logs for the call. A WeakMap: the entry goes with the call's metadata.
 *
 * Why not AsyncLocalStorage, which found the context from anywhere: on Node 20 it runs async
 * hooks for every promise of the process once one context has been entered, a visible share of
 * an Append's server CPU (BENCHMARKS.md, "Hot-path costs removed"); Node 22's AsyncContextFrame
 * would not. The lines written for a call are few and known: the call's end (interceptor.ts),
 * its refusal (auth/interceptor.ts) and an unexpected error of its handler (grpc-api.ts).
 */
const contexts = new WeakMap<Metadata, RequestContext>();

/** Makes `context` the context of the call whose request metadata this is. */
export function bindRequestContext(metadata: Metadata, context: RequestContext): void {
  contexts.set(metadata, context);
}

/** The context of the call whose request metadata this is, if the interceptor bound one. */
export function requestContextOf(metadata: Metadata): RequestContext | undefined {
  return contexts.get(metadata);
}
