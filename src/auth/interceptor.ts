import { ServerInterceptingCall, type ServerInterceptor } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { toStatus } from '../api/errors';
import { requestContext } from '../observability/request-context';
import { isOpenMethod, permissionsOf } from './actions';
import { PermissionDeniedError, UnauthenticatedError } from './errors';
import { bearerKey, hashKey } from './keys';
import type { AuthRegistry } from './registry';

/**
 * Authenticates every API call by its `authorization: Bearer <key>` metadata and authorizes it
 * against the principal's policy, before the handler sees it. Refused calls never reach the
 * service: the interceptor answers with UNAUTHENTICATED or PERMISSION_DENIED itself. Health and
 * reflection stay open, so that probes and grpcurl's schema discovery work without a key.
 */
export function authInterceptor(options: { registry: () => AuthRegistry; logger: Logger }): ServerInterceptor {
  return (method, call) => {
    if (isOpenMethod(method.path)) return new ServerInterceptingCall(call);
    let principal: string | undefined;
    let refused = false;
    const refuse = (error: UnauthenticatedError | PermissionDeniedError) => {
      refused = true;
      options.logger.info({ ...requestContext.getStore(), reason: error.message }, 'call refused');
      const { unexpected: _ignored, ...statusObject } = toStatus(error);
      call.sendStatus(statusObject);
    };

    return new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, next) => {
            const key = bearerKey(metadata.get('authorization')[0]);
            if (key === undefined) {
              refuse(new UnauthenticatedError('missing API key: send the metadata "authorization: Bearer <key>"'));
              return;
            }
            principal = options.registry().principalOfHash(hashKey(key));
            if (principal === undefined) {
              refuse(new UnauthenticatedError('unknown or revoked API key'));
              return;
            }
            const context = requestContext.getStore();
            if (context) context.principal = principal;
            next(metadata);
          },
          onReceiveMessage: (message, next) => {
            if (refused || principal === undefined) return;
            const needed = permissionsOf(method.path, message) ?? [{ action: 'admin' as const, resource: method.path }];
            const policy = options.registry().policyOf(principal);
            for (const { action, resource } of needed) {
              if (!policy?.decide(action, resource).allowed) {
                refuse(new PermissionDeniedError(action, resource));
                return;
              }
            }
            next(message);
          },
          onReceiveHalfClose: (next) => {
            if (!refused) next();
          },
        }),
    });
  };
}
