import {
  ServerInterceptingCall,
  type Metadata,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
} from '@grpc/grpc-js';
import type { StreamReadCheck } from '../feed/feed-filter';
import type { Logger } from 'pino';
import { toStatus } from '../api/errors';
import { requestContextOf, type RequestContext } from '../observability/request-context';
import { isOpenMethod, permissionsOf, type Permission } from './actions';
import { PermissionDeniedError, UnauthenticatedError } from './errors';
import { bearerKey, hashKey } from './keys';
import type { AuthRegistry } from './registry';

/** Why a call may not go on, or undefined when it may. */
export type Refusal = UnauthenticatedError | PermissionDeniedError;

/** A long-lived call that passed the checks and is still open: checked again when auth changes. */
interface OpenCall {
  /** The refusal the current keys and policies give it, if any. */
  recheck(): Refusal | undefined;
  end(refusal: Refusal): void;
}

/**
 * Authenticates every API call by its `authorization: Bearer <key>` metadata and authorizes it
 * against the principal's policy, before the handler sees it. Refused calls never reach the
 * service: the interceptor answers with UNAUTHENTICATED or PERMISSION_DENIED itself. Health and
 * reflection stay open, so that probes and grpcurl's schema discovery work without a key.
 *
 * A streaming call (Subscribe) may stay open for days, kept alive by heartbeats: the check made
 * when it started is not enough. Such calls are remembered while open, and `recheckOpenCalls`
 * (run when keys or policies change) ends those whose key or policy no longer allows them. Unary
 * calls are not remembered: they end on their own, and Append is the hot path.
 */
export class AuthInterceptor {
  private readonly open = new Set<OpenCall>();

  constructor(private readonly options: { registry: () => AuthRegistry; logger: Logger }) {}

  /**
   * Checks every open streaming call again with the current keys and policies, and ends the
   * refused ones with UNAUTHENTICATED (key revoked or removed) or PERMISSION_DENIED (the policy
   * no longer allows it). Costs one policy check per open call, and only when auth changed.
   */
  recheckOpenCalls(): void {
    for (const call of [...this.open]) {
      const refusal = call.recheck();
      if (refusal) call.end(refusal);
    }
  }

  readonly interceptor: ServerInterceptor = (method, call) => {
    if (isOpenMethod(method.path)) return new ServerInterceptingCall(call);
    return new AuthorizedCall(call, method.path, method.requestStream || method.responseStream, this, this.open);
  };

  /** Logs a refused call, or an open one ended, with its request context. */
  logRefusal(context: RequestContext | undefined, error: Refusal, message: string): void {
    this.options.logger.info({ ...context, reason: error.message }, message);
  }

  /**
   * Which streams the caller of a call (by its metadata) may read, answered with the keys and
   * policies current at each question: a feed asks for every stream whose entry it is about to
   * deliver, so a policy change reaches a feed that is open. Answers are kept per stream until
   * the registry changes. Undefined for a call without a known key (the interceptor refused it).
   */
  readCheckOf(metadata: Metadata): StreamReadCheck | undefined {
    const key = bearerKey(metadata.get('authorization')[0]);
    if (key === undefined) return undefined;
    const keyHash = hashKey(key);
    let registry: AuthRegistry | undefined;
    let revision = -1;
    const answers = new Map<string, boolean>();
    return (stream) => {
      const current = this.options.registry();
      if (current !== registry || current.revision !== revision) {
        registry = current;
        revision = current.revision;
        answers.clear();
      }
      let allowed = answers.get(stream);
      if (allowed === undefined) {
        allowed = this.refusalOf(keyHash, [{ action: 'stream:read', resource: stream }]) === undefined;
        // Bounded: a feed over a huge tree would otherwise keep an answer for every stream.
        if (answers.size >= 10_000) answers.clear();
        answers.set(stream, allowed);
      }
      return allowed;
    };
  }

  /**
   * The caller of a call by its `authorization` value ("Bearer <key>"): its key's hash and its
   * principal, or why it is refused. The gRPC calls give their metadata's value, the web console
   * its request's header: one rule for both.
   */
  authenticate(authorization: unknown): { keyHash: string; principal: string } | UnauthenticatedError {
    const key = bearerKey(authorization);
    if (key === undefined) return new UnauthenticatedError('missing API key: send the metadata "authorization: Bearer <key>"');
    const keyHash = hashKey(key);
    const principal = this.options.registry().principalOfHash(keyHash);
    if (principal === undefined) return new UnauthenticatedError('unknown or revoked API key');
    return { keyHash, principal };
  }

  /** What a call of the method with this request needs; a method the table does not know needs admin. */
  permissionsNeeded(methodPath: string, request: unknown): Permission[] {
    return permissionsOf(methodPath, request) ?? [{ action: 'admin' as const, resource: methodPath }];
  }

  /**
   * Keeps a long-lived call of another transport (a tail of the web console) among the open
   * calls: when keys or policies change, it is checked again like a Subscribe, and `end` is
   * called with the refusal when it is no longer allowed. Returns the function that forgets it,
   * called when the call ends.
   */
  trackOpenCall(keyHash: string, needed: Permission[], end: (refusal: Refusal) => void): () => void {
    const tracked: OpenCall = { recheck: () => this.refusalOf(keyHash, needed), end };
    this.open.add(tracked);
    return () => this.open.delete(tracked);
  }

  /** The current keys and policies' answer for a key and the permissions a call needs. */
  refusalOf(keyHash: string, needed: Permission[]): Refusal | undefined {
    const registry = this.options.registry();
    const principal = registry.principalOfHash(keyHash);
    if (principal === undefined) return new UnauthenticatedError('unknown or revoked API key');
    const policy = registry.policyOf(principal);
    for (const { action, resource } of needed) {
      if (!policy?.decide(action, resource).allowed) return new PermissionDeniedError(action, resource);
    }
    return undefined;
  }
}

/** What grpc-js hands a call's `start`: the next layer's listener (not exported by grpc-js). */
type CallListener = Parameters<ServerInterceptingCallInterface['start']>[0];
/** A status as a layer sends it (grpc-js's PartialStatusObject, not exported by grpc-js). */
type CallStatus = Parameters<ServerInterceptingCallInterface['sendStatus']>[0];

/**
 * One API call as the auth interceptor checks it: the layer, the listener of what arrives and,
 * for a streaming call that passed, the open call checked again when auth changes, in one
 * object with its methods on the class. grpc-js's generic layer (`new ServerInterceptingCall(call,
 * responder)`) built a listener, a responder and a closure per hook for each call, and an open
 * call two closures more; an idle subscription held them for as long as it is open (1.5 KB each
 * of 10,000 with auth required, BENCHMARKS.md, "Memory"). Every hook here goes on at once or
 * not at all, so the queueing of the generic layer had nothing to hold; it is subclassed only to
 * be the type grpc-js's ServerInterceptor returns, the methods that use its hooks overridden.
 */
class AuthorizedCall extends ServerInterceptingCall implements CallListener, OpenCall {
  private listener: CallListener | undefined;
  private keyHash: string | undefined;
  private needed: Permission[] = [];
  private context: RequestContext | undefined;
  private refused = false;
  private tracked = false;
  /** Once the call is cancelled, nothing more is passed on (as grpc-js's own layer does). */
  private cancelled = false;

  constructor(
    private readonly next: ServerInterceptingCallInterface,
    private readonly path: string,
    private readonly streaming: boolean,
    private readonly auth: AuthInterceptor,
    private readonly open: Set<OpenCall>,
  ) {
    super(next);
  }

  override start(listener: CallListener): void {
    this.listener = listener;
    this.next.start(this);
  }

  onReceiveMetadata(metadata: Metadata): void {
    if (this.cancelled) return;
    this.context = requestContextOf(metadata);
    const caller = this.auth.authenticate(metadata.get('authorization')[0]);
    if (caller instanceof UnauthenticatedError) {
      this.refuse(caller);
      return;
    }
    this.keyHash = caller.keyHash;
    if (this.context) this.context.principal = caller.principal;
    this.listener?.onReceiveMetadata(metadata);
  }

  onReceiveMessage(message: unknown): void {
    if (this.cancelled || this.refused || this.keyHash === undefined) return;
    this.needed = this.auth.permissionsNeeded(this.path, message);
    const refusal = this.auth.refusalOf(this.keyHash, this.needed);
    if (refusal) {
      this.refuse(refusal);
      return;
    }
    if (this.streaming && !this.tracked) {
      this.tracked = true;
      this.open.add(this);
    }
    this.listener?.onReceiveMessage(message);
  }

  onReceiveHalfClose(): void {
    if (this.cancelled || this.refused) return;
    this.listener?.onReceiveHalfClose();
  }

  onCancel(): void {
    this.cancelled = true;
    this.forget();
    this.listener?.onCancel();
  }

  // Once refused, the refusal is the call's status: what the handler still sends before it
  // hears of the end (grpc-js tells it as a cancel) is dropped, or it would be written after
  // the status and break the stream.
  override sendMessage(message: unknown, callback: () => void): void {
    if (!this.refused) this.next.sendMessage(message, callback);
  }

  override sendMetadata(metadata: Metadata): void {
    this.next.sendMetadata(metadata);
  }

  override sendStatus(statusObject: CallStatus): void {
    this.forget();
    if (!this.refused) this.next.sendStatus(statusObject);
  }

  /** The refusal the current keys and policies give this open call, if any. */
  recheck(): Refusal | undefined {
    return this.keyHash === undefined ? undefined : this.auth.refusalOf(this.keyHash, this.needed);
  }

  /** Ends the open call: no longer authorized. */
  end(refusal: Refusal): void {
    this.refuse(refusal, 'open call ended: no longer authorized');
  }

  private refuse(error: Refusal, message = 'call refused'): void {
    if (this.refused) return;
    this.refused = true;
    this.forget();
    this.auth.logRefusal(this.context, error, message);
    const { unexpected: _ignored, ...statusObject } = toStatus(error);
    this.next.sendStatus(statusObject);
  }

  private forget(): void {
    if (this.tracked) this.open.delete(this);
  }
}
