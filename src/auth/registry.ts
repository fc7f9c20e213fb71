import { CompiledPolicy, ruleProblem, type Policy, type Rule } from './policy';

/** Event types of the `/$/auth` system stream. */
export const AUTH_EVENTS = {
  keyCreated: '$auth.key-created',
  keyRevoked: '$auth.key-revoked',
  policySet: '$auth.policy-set',
  policyRemoved: '$auth.policy-removed',
} as const;

/** The data of each auth event, as stored (JSON). */
export type AuthEvent =
  | { type: typeof AUTH_EVENTS.keyCreated; data: { keyId: string; principal: string; sha256: string; createdAt: string; description?: string } }
  | { type: typeof AUTH_EVENTS.keyRevoked; data: { keyId: string; revokedAt: string } }
  | { type: typeof AUTH_EVENTS.policySet; data: { principal: string; rules: Rule[] } }
  | { type: typeof AUTH_EVENTS.policyRemoved; data: { principal: string } };

/** What `auth key ls` shows of a key: never the key or its hash. */
export interface KeyInfo {
  keyId: string;
  principal: string;
  createdAt: string;
  description?: string;
  revokedAt?: string;
}

/**
 * Keys and policies as of the last event applied: a fold over the `/$/auth` stream. The server
 * keeps one and applies new entries as they appear; the CLI builds one to validate and list.
 */
export class AuthRegistry {
  private readonly keysByHash = new Map<string, KeyInfo>();
  private readonly keysById = new Map<string, KeyInfo & { sha256: string }>();
  private readonly policies = new Map<string, CompiledPolicy>();
  private revision_ = 0;

  /** Grows with every event applied: answers cached from an older revision may be stale. */
  get revision(): number {
    return this.revision_;
  }

  /** Applies one event; events of unknown types or shapes are skipped, so old servers read new streams. */
  apply(event: { type: string; data: unknown }): void {
    this.revision_++;
    const data = (event.data ?? {}) as Record<string, unknown>;
    switch (event.type) {
      case AUTH_EVENTS.keyCreated: {
        const { keyId, principal, sha256, createdAt, description } = data;
        if (typeof keyId !== 'string' || typeof principal !== 'string' || typeof sha256 !== 'string') return;
        const info: KeyInfo & { sha256: string } = {
          keyId,
          principal,
          sha256,
          createdAt: String(createdAt),
          ...(typeof description === 'string' ? { description } : {}),
        };
        this.keysById.set(keyId, info);
        this.keysByHash.set(sha256, info);
        return;
      }
      case AUTH_EVENTS.keyRevoked: {
        const key = typeof data.keyId === 'string' ? this.keysById.get(data.keyId) : undefined;
        if (!key) return;
        key.revokedAt = String(data.revokedAt);
        this.keysByHash.delete(key.sha256);
        return;
      }
      case AUTH_EVENTS.policySet: {
        const { principal, rules } = data;
        if (typeof principal !== 'string' || !Array.isArray(rules)) return;
        if ((rules as Rule[]).some((rule) => ruleProblem(rule) !== undefined)) return;
        this.policies.set(principal, new CompiledPolicy({ principal, rules: rules as Rule[] }));
        return;
      }
      case AUTH_EVENTS.policyRemoved:
        if (typeof data.principal === 'string') this.policies.delete(data.principal);
        return;
    }
  }

  /** The principal of an active (not revoked) key, by the key's SHA-256. */
  principalOfHash(sha256: string): string | undefined {
    return this.keysByHash.get(sha256)?.principal;
  }

  /** The principal's policy; a principal without one may do nothing. */
  policyOf(principal: string): CompiledPolicy | undefined {
    return this.policies.get(principal);
  }

  /** Every key ever created, revoked ones included, oldest first. */
  keys(): KeyInfo[] {
    return [...this.keysById.values()].map(({ sha256: _hidden, ...info }) => info);
  }

  hasKey(keyId: string): boolean {
    return this.keysById.has(keyId);
  }

  /** Every policy, by principal. */
  allPolicies(): Policy[] {
    return [...this.policies.values()].map((compiled) => compiled.policy);
  }
}
