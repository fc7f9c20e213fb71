import { DomainError } from '../core/errors';

/** The call carries no API key, or one the server does not accept (unknown or revoked). */
export class UnauthenticatedError extends DomainError {
  readonly reason = 'UNAUTHENTICATED';
}

/** The caller's policy does not allow the action on the stream. */
export class PermissionDeniedError extends DomainError {
  readonly reason = 'PERMISSION_DENIED';
  constructor(readonly action: string, readonly resource: string) {
    super(`permission denied: ${action} on ${resource === '' ? '(no stream)' : resource}`);
  }
  override metadata(): Record<string, string> {
    return { action: this.action, resource: this.resource };
  }
}
