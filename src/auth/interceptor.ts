import { ServerInterceptingCall, type Metadata, type ServerInterceptor } from '@grpc/grpc-js';
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
    const streaming = method.requestStream || method.responseStream;
    let keyHash: string | undefined;
    let needed: Permission[] = [];
    let context: RequestContext | undefined;
    let refused = false;
    let tracked: OpenCall | undefined;
    const forget = () => {
      if (tracked) this.open.delete(tracked);
    };
    const refuse = (error: Refusal, message = 'call refused') => {
      if (refused) return;
      refused = true;
      forget();
      this.options.logger.info({ ...context, reason: error.message }, message);
      const { unexpected: _ignored, ...statusObject } = toStatus(error);
      call.sendStatus(statusObject);
    };

    return new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, next) => {
            context = requestContextOf(metadata);
            const caller = this.authenticate(metadata.get('authorization')[0]);
            if (caller instanceof UnauthenticatedError) {
              refuse(caller);
              return;
            }
            keyHash = caller.keyHash;
            if (context) context.principal = caller.principal;
            next(metadata);
          },
          onReceiveMessage: (message, next) => {
            if (refused || keyHash === undefined) return;
            const hash = keyHash;
            needed = this.permissionsNeeded(method.path, message);
            const refusal = this.refusalOf(hash, needed);
            if (refusal) {
              refuse(refusal);
              return;
            }
            if (streaming && !tracked) {
              tracked = {
                recheck: () => this.refusalOf(hash, needed),
                end: (error) => refuse(error, 'open call ended: no longer authorized'),
              };
              this.open.add(tracked);
            }
            next(message);
          },
          onReceiveHalfClose: (next) => {
            if (!refused) next();
          },
          onCancel: forget,
        }),
      // Once refused, the refusal is the call's status: what the handler still sends before it
      // hears of the end (grpc-js tells it as a cancel) is dropped, or it would be written after
      // the status and break the stream.
      sendMessage: (message, next) => {
        if (!refused) next(message);
      },
      sendStatus: (statusObject, next) => {
        forget();
        if (!refused) next(statusObject);
      },
    });
  };

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
