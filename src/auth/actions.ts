/** What a caller may be allowed or denied to do. */
export const ACTIONS = [
  'stream:create',
  'stream:read',
  'stream:append',
  'snapshot:read',
  'snapshot:write',
  'snapshot:delete',
  // A family of their own, so that "stream:*" (which tenants are commonly given) does not grant
  // the irreversible shred: policies written before these actions existed must not widen.
  'stream-key:rotate',
  'stream-key:shred',
  'admin',
] as const;

/** One action of `ACTIONS`. */
export type Action = (typeof ACTIONS)[number];

/** One permission a call needs: an action on a stream path. */
export interface Permission {
  action: Action;
  resource: string;
}

const API_PREFIX = '/eventhorizon.v1.EventHorizon/';

/** The action each API method needs on the stream its request names. */
const METHOD_ACTIONS: Record<string, Action> = {
  CreateStream: 'stream:create',
  Append: 'stream:append',
  Read: 'stream:read',
  Subscribe: 'stream:read',
  // On the subtree's root; each stream of the subtree is checked again as its entries go out.
  SubscribeFeed: 'stream:read',
  ReadFeed: 'stream:read',
  DescribeStream: 'stream:read',
  ListChildren: 'stream:read',
  PutSnapshot: 'snapshot:write',
  GetSnapshot: 'snapshot:read',
  DeleteSnapshot: 'snapshot:delete',
  RotateStreamKey: 'stream-key:rotate',
  ShredStream: 'stream-key:shred',
};

/** Services any connected caller may use: health (for probes) and reflection (the schema only). */
const OPEN_SERVICES = ['/grpc.health.v1.Health/', '/grpc.reflection.'];

/** Whether calls of this method are served without a key. */
export function isOpenMethod(methodPath: string): boolean {
  return OPEN_SERVICES.some((prefix) => methodPath.startsWith(prefix));
}

/**
 * The permissions a call needs, from its method and request. Undefined for a method this table
 * does not know: such calls are refused rather than let through.
 */
export function permissionsOf(methodPath: string, request: unknown): Permission[] | undefined {
  if (!methodPath.startsWith(API_PREFIX)) return undefined;
  const action = METHOD_ACTIONS[methodPath.slice(API_PREFIX.length)];
  if (!action) return undefined;
  const body = (request ?? {}) as { stream?: unknown; entriesAfter?: unknown; selector?: { stream?: unknown } };
  // The feed's requests name their stream in a selector.
  const stream = body.selector?.stream ?? body.stream;
  const resource = typeof stream === 'string' ? stream : '';
  const needed: Permission[] = [{ action, resource }];
  // A snapshot read that also returns the entries after it reads the stream too.
  if (action === 'snapshot:read' && body.entriesAfter === true) needed.push({ action: 'stream:read', resource });
  return needed;
}

/** Whether a text names an action, or is a pattern of actions ("*", "stream:*"). */
export function isActionPattern(text: string): boolean {
  if (text === '*') return true;
  if (text.endsWith(':*')) return ACTIONS.some((action) => action.startsWith(text.slice(0, -1)));
  return (ACTIONS as readonly string[]).includes(text);
}

/** Whether an action pattern of a rule covers the action. */
export function actionMatches(pattern: string, action: Action): boolean {
  if (pattern === '*' || pattern === action) return true;
  return pattern.endsWith(':*') && action.startsWith(pattern.slice(0, -1));
}
