import fs from 'node:fs';
import { credentials, InterceptingCall, type Interceptor } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { EventHorizonClient } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { AUTH_STREAM, appendAuthEvent } from '../../src/auth/auth-stream';
import { generateKey, hashKey } from '../../src/auth/keys';
import { parseRule, type Rule } from '../../src/auth/policy';
import { AUTH_EVENTS } from '../../src/auth/registry';
import { DEFAULT_CONFIG, type ServerConfig } from '../../src/config/config';
import { generateKeyring } from '../../src/crypto/keyring';
import { ADMIN_KEY_CACHE, openEventStore } from '../../src/wiring';
import { api, startTestServer, tempDir, type Api, type TestServer } from './server';

/** A client interceptor that sends the key as `authorization: Bearer <key>`. */
export function bearer(key: string): Interceptor {
  return (options, nextCall) =>
    new InterceptingCall(nextCall(options), {
      start: (metadata, listener, next) => {
        metadata.set('authorization', `Bearer ${key}`);
        next(metadata, listener);
      },
    });
}

/** A key made by `AuthTestServer.grant`. */
export interface GrantedKey {
  keyId: string;
  key: string;
}

/**
 * A real server with auth required and encryption at rest on (so that shredding and key
 * rotation work), on a loopback port. Keys and policies are written in-process to the same
 * SQLite data, as `eventhorizon auth` would; `refresh` makes the server read them now. The
 * periodic refresh is slowed down so that only `refresh` applies them: tests say when.
 */
export interface AuthTestServer {
  test: TestServer;
  /** Creates a key for the principal and sets its policy ("ACTIONS=GLOBS" rules). */
  grant(principal: string, rules: { allow?: string[]; deny?: string[] }): Promise<GrantedKey>;
  /** Replaces the principal's policy. */
  setPolicy(principal: string, rules: { allow?: string[]; deny?: string[] }): Promise<void>;
  removePolicy(principal: string): Promise<void>;
  revoke(key: GrantedKey): Promise<void>;
  /** Rotates the data key of `/$/auth` from the admin's side, as another replica could. */
  rotateAuthStreamKey(): Promise<number>;
  /** Makes the server apply what was written. */
  refresh(): Promise<void>;
  /** A client calling with this key. */
  client(key: GrantedKey): EventHorizonClient;
  as(key: GrantedKey): Api;
  stop(): Promise<void>;
}

export async function startAuthTestServer(overrides: Partial<ServerConfig> = {}, logger?: Logger): Promise<AuthTestServer> {
  const dataDir = tempDir('eh-auth-');
  const keyring = JSON.stringify(generateKeyring('kek-1'));
  const test = await startTestServer({ dataDir, auth: 'required', authRefreshMs: 3_600_000, keyring, ...overrides }, undefined, undefined, logger);
  // A second handle on the same data, as the CLI opens it next to a serving server.
  const { core: admin, store } = await openEventStore({ ...DEFAULT_CONFIG, dataDir, keyring }, { keyCache: ADMIN_KEY_CACHE });
  const clients: EventHorizonClient[] = [];

  const rulesOf = ({ allow = [], deny = [] }: { allow?: string[]; deny?: string[] }): Rule[] => [
    ...allow.map((text) => parseRule('allow', text)),
    ...deny.map((text) => parseRule('deny', text)),
  ];
  const setPolicy = (principal: string, rules: { allow?: string[]; deny?: string[] }) =>
    appendAuthEvent(admin, { type: AUTH_EVENTS.policySet, data: { principal, rules: rulesOf(rules) } });
  const refresh = async () => {
    if (!test.server.refreshAuth) throw new Error('auth is not required on this server');
    await test.server.refreshAuth();
  };
  const client = (key: GrantedKey) => {
    const made = new EventHorizonClient(test.address, credentials.createInsecure(), { interceptors: [bearer(key.key)] });
    clients.push(made);
    return made;
  };

  return {
    test,
    async grant(principal, rules) {
      const made = generateKey();
      await appendAuthEvent(admin, {
        type: AUTH_EVENTS.keyCreated,
        data: { keyId: made.keyId, principal, sha256: hashKey(made.key), createdAt: new Date().toISOString() },
      });
      await setPolicy(principal, rules);
      return made;
    },
    setPolicy,
    removePolicy: (principal) => appendAuthEvent(admin, { type: AUTH_EVENTS.policyRemoved, data: { principal } }),
    revoke: (key) =>
      appendAuthEvent(admin, { type: AUTH_EVENTS.keyRevoked, data: { keyId: key.keyId, revokedAt: new Date().toISOString() } }),
    rotateAuthStreamKey: () => admin.rotateStreamKey(AUTH_STREAM),
    refresh,
    client,
    as: (key) => api(client(key)),
    async stop() {
      for (const made of clients) made.close();
      await test.stop();
      await store.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
