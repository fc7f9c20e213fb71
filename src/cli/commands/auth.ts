import { parseArgs } from 'node:util';
import pino from 'pino';
import { appendAuthEvent, AuthStreamFollower } from '../../auth/auth-stream';
import type { EventStoreCore } from '../../core/event-store-core';
import { generateKey, hashKey } from '../../auth/keys';
import { parseRule, type Rule } from '../../auth/policy';
import { AUTH_EVENTS, type AuthRegistry } from '../../auth/registry';
import { ACTIONS } from '../../auth/actions';
import { openAdminStore } from './admin-store';
import { UsageError } from './exit-codes';

/** Help of `eventhorizon auth`. */
export const AUTH_USAGE = `Usage: eventhorizon auth <key|policy> <command> [options]

Manages API keys and policies, kept in the store's /$/auth system stream. Works directly on the
data folder (also while the server runs: it picks changes up within --auth-refresh-interval).

  auth key create --principal NAME [--description TEXT]   prints the new key once
  auth key ls                                            lists keys (never the keys themselves)
  auth key revoke KEY_ID                                 the key stops working at once
  auth policy set NAME [--allow RULE]... [--deny RULE]... replaces NAME's policy
  auth policy ls                                         lists every policy
  auth policy rm NAME                                    removes NAME's policy (it may do nothing)

A RULE is ACTIONS=GLOBS, comma-separated: "stream:read,stream:append=/tenants/acme/**".
Actions: ${ACTIONS.join(', ')}; "stream:*" or "*" for several.
A deny rule wins over any allow rule; without a matching allow rule a call is denied.

Options: --data-dir DIR, --store KIND, --config FILE (as for serve; EH_ variables apply),
         --json for machine-readable output.
`;

/** `eventhorizon auth ...` */
export async function authCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string' },
      store: { type: 'string' },
      'data-dir': { type: 'string' },
      principal: { type: 'string' },
      description: { type: 'string' },
      allow: { type: 'string', multiple: true },
      deny: { type: 'string', multiple: true },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
  const [group, command, argument] = positionals;
  if (values.help || group === undefined) {
    process.stdout.write(AUTH_USAGE);
    return;
  }
  const json = values.json === true;
  const storeFlags = { config: values.config, store: values.store, 'data-dir': values['data-dir'] };
  const run = async (action: (target: EventStoreCore, registry: AuthRegistry) => Promise<unknown>) => {
    const target = await openAdminStore(storeFlags);
    try {
      const follower = new AuthStreamFollower(target, 1_000, pino({ level: 'silent' }));
      await follower.refresh();
      const result = await action(target, follower.registry);
      if (result !== undefined) print(result, json);
    } finally {
      await target.store.close();
    }
  };

  switch (`${group} ${command ?? ''}`) {
    case 'key create': {
      const principal = values.principal;
      if (!principal) throw new UsageError('auth key create needs --principal NAME');
      return run(async (target) => {
        const { keyId, key } = generateKey();
        const createdAt = new Date().toISOString();
        const description = values.description;
        await appendAuthEvent(target, {
          type: AUTH_EVENTS.keyCreated,
          data: { keyId, principal, sha256: hashKey(key), createdAt, ...(description ? { description } : {}) },
        });
        return json ? { keyId, principal, key } : `${key}\n# key id ${keyId} for principal ${principal}: store the key now, it is not shown again`;
      });
    }
    case 'key ls':
      return run(async (_target, registry) =>
        json
          ? registry.keys()
          : table(
              ['KEY ID', 'PRINCIPAL', 'CREATED', 'REVOKED', 'DESCRIPTION'],
              registry.keys().map((k) => [k.keyId, k.principal, k.createdAt, k.revokedAt ?? '-', k.description ?? '']),
            ),
      );
    case 'key revoke': {
      if (!argument) throw new UsageError('auth key revoke needs KEY_ID (see auth key ls)');
      return run(async (target, registry) => {
        if (!registry.hasKey(argument)) throw new UsageError(`no key with id ${argument}`);
        await appendAuthEvent(target, { type: AUTH_EVENTS.keyRevoked, data: { keyId: argument, revokedAt: new Date().toISOString() } });
        return json ? { keyId: argument, revoked: true } : `revoked key ${argument}`;
      });
    }
    case 'policy set': {
      if (!argument) throw new UsageError('auth policy set needs the principal NAME');
      let rules: Rule[];
      try {
        rules = [
          ...(values.deny ?? []).map((text) => parseRule('deny', text)),
          ...(values.allow ?? []).map((text) => parseRule('allow', text)),
        ];
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
      if (rules.length === 0) throw new UsageError('auth policy set needs at least one --allow or --deny rule');
      return run(async (target) => {
        await appendAuthEvent(target, { type: AUTH_EVENTS.policySet, data: { principal: argument, rules } });
        return json ? { principal: argument, rules } : `policy of ${argument} set: ${rules.length} rule(s)`;
      });
    }
    case 'policy ls':
      return run(async (_target, registry) =>
        json
          ? registry.allPolicies()
          : table(
              ['PRINCIPAL', 'EFFECT', 'ACTIONS', 'STREAMS'],
              registry.allPolicies().flatMap((p) => p.rules.map((r) => [p.principal, r.effect, r.actions.join(','), r.streams.join(',')])),
            ),
      );
    case 'policy rm': {
      if (!argument) throw new UsageError('auth policy rm needs the principal NAME');
      return run(async (target) => {
        await appendAuthEvent(target, { type: AUTH_EVENTS.policyRemoved, data: { principal: argument } });
        return json ? { principal: argument, removed: true } : `policy of ${argument} removed`;
      });
    }
    default:
      throw new UsageError(`unknown auth command "${positionals.join(' ')}"`);
  }
}

function print(result: unknown, json: boolean): void {
  process.stdout.write(json || typeof result !== 'string' ? `${JSON.stringify(result, null, 2)}\n` : `${result}\n`);
}

/** Columns padded to their widest cell. */
function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  return [header, ...rows].map((row) => row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n');
}
