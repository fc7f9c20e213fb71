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
  // Consumer groups: a family of their own too, so that "stream:*" grants none of it. The
  // resource is "/$consumer-groups/<name>" (docs/consumer-groups.md).
  'consumer-group:manage',
  'consumer-group:describe',
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

/** The resource of a consumer group in policies: a path under a reserved top-level name. */
export const CONSUMER_GROUPS_RESOURCE = '/$consumer-groups';

/** The permissions of the consumer-group methods (docs/consumer-groups.md, Authorization). */
function groupPermissionsOf(method: string, body: { name?: unknown; selector?: { stream?: unknown } }): Permission[] | undefined {
  const group = typeof body.name === 'string' ? `${CONSUMER_GROUPS_RESOURCE}/${body.name}` : CONSUMER_GROUPS_RESOURCE;
  switch (method) {
    case 'CreateConsumerGroup': {
      const stream = typeof body.selector?.stream === 'string' ? body.selector.stream : '';
      // The creator must be able to read what the group reads.
      return [
        { action: 'consumer-group:manage', resource: group },
        { action: 'stream:read', resource: stream },
      ];
    }
    case 'UpdateConsumerGroup':
    case 'DeleteConsumerGroup':
    case 'ResetConsumerGroup':
      return [{ action: 'consumer-group:manage', resource: group }];
    case 'DescribeConsumerGroup':
      return [{ action: 'consumer-group:describe', resource: group }];
    case 'ListConsumerGroups':
      return [{ action: 'consumer-group:describe', resource: CONSUMER_GROUPS_RESOURCE }];
    // A known key only: the handler checks stream:read on the group's subtree when the member
    // joins, and on each stream as its entries go out. Ack presents the member id the server gave.
    case 'Consume':
    case 'Ack':
      return [];
    default:
      return undefined;
  }
}

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
  const method = methodPath.slice(API_PREFIX.length);
  const body = (request ?? {}) as { stream?: unknown; name?: unknown; entriesAfter?: unknown; selector?: { stream?: unknown } };
  const action = METHOD_ACTIONS[method];
  if (!action) return groupPermissionsOf(method, body);
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
