import type {
  AckRequest,
  AckResponse,
  ConsumeResponse,
  ConsumerGroup,
  ConsumerGroupSettings as ApiSettings,
  CreateConsumerGroupRequest,
  CreateConsumerGroupResponse,
  DeleteConsumerGroupRequest,
  DeleteConsumerGroupResponse,
  DescribeConsumerGroupRequest,
  DescribeConsumerGroupResponse,
  ListConsumerGroupsResponse,
  ResetConsumerGroupRequest,
  ResetConsumerGroupResponse,
  UpdateConsumerGroupRequest,
  UpdateConsumerGroupResponse,
  ConsumeRequest,
} from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { PermissionDeniedError } from '../auth/errors';
import type { StreamReadCheck } from '../feed/feed-filter';
import type { ConsumerGroups } from '../groups/consumer-groups';
import type { Lifetime } from '../realtime/lifetime';
import type { ConsumerGroupSettings, EventStore, StoredConsumerGroup } from '../store/port';
import { Violations, checkPosition, feedSelectionOf } from './validation';

/** Settings a group gets where its request says 0. */
export const DEFAULT_GROUP_SETTINGS: ConsumerGroupSettings = { partitions: 16, ackWaitMs: 30_000, maxDeliveries: 10, maxInFlight: 100 };

const LIMITS: Record<keyof ConsumerGroupSettings, { field: string; min: number; max: number }> = {
  partitions: { field: 'partitions', min: 1, max: 1024 },
  ackWaitMs: { field: 'ack_wait_ms', min: 100, max: 3_600_000 },
  maxDeliveries: { field: 'max_deliveries', min: 1, max: 1000 },
  maxInFlight: { field: 'max_in_flight', min: 1, max: 10_000 },
};

const GROUP_NAME = /^[A-Za-z0-9._-]{1,128}$/;
const MEMBER_NAME = /^[\x20-\x7e]{0,128}$/;
/** Parked entries DescribeConsumerGroup lists. */
const DESCRIBED_PARKED = 100;

function checkGroupName(violations: Violations, field: string, name: string): void {
  if (!GROUP_NAME.test(name)) violations.add(field, 'must be 1..128 characters of [A-Za-z0-9._-]');
}

/** The settings a request gives (0: unset), checked against their ranges. */
function settingsOf(violations: Violations, field: string, settings: ApiSettings | undefined): Partial<ConsumerGroupSettings> {
  const given: Partial<ConsumerGroupSettings> = {};
  for (const key of Object.keys(LIMITS) as Array<keyof ConsumerGroupSettings>) {
    const value = settings?.[key] ?? 0;
    if (value === 0) continue;
    const { field: name, min, max } = LIMITS[key];
    if (value < min || value > max) violations.add(`${field}.${name}`, `must be 0 (unset) or ${min}..${max}`);
    else given[key] = value;
  }
  return given;
}

/** The API's message of a stored group. */
export function apiGroup(group: StoredConsumerGroup): ConsumerGroup {
  return {
    name: group.name,
    selector: { stream: group.subtree.path, excludeDescendants: !group.subtree.descendants, eventTypes: group.eventTypes },
    settings: { ...group.settings },
    startPosition: group.startPosition,
    createdAt: group.createdAt,
  };
}

/**
 * The consumer-group RPCs (docs/consumer-groups.md): validate → call the coordinator → map. Used
 * by GrpcApi, which owns the gRPC plumbing (unary handlers, server streams).
 */
export class ConsumerGroupsApi {
  constructor(
    private readonly groups: ConsumerGroups,
    private readonly store: EventStore,
    private readonly mustExist: (stream: string) => Promise<void>,
  ) {}

  async create(request: CreateConsumerGroupRequest): Promise<CreateConsumerGroupResponse> {
    const violations = new Violations();
    checkGroupName(violations, 'name', request.name);
    const selection = feedSelectionOf(violations, 'selector', request.selector);
    const settings = settingsOf(violations, 'settings', request.settings);
    if (request.start?.$case === 'afterPosition') checkPosition(violations, 'after_position', request.start.value);
    violations.throwIfAny();
    await this.mustExist(selection.subtree.path);
    const startPosition =
      request.start?.$case === 'afterPosition' ? request.start.value : request.start?.$case === 'fromNow' && request.start.value ? await this.store.feedHead() : 0n;
    const group = await this.groups.create({
      name: request.name,
      subtree: selection.subtree,
      eventTypes: [...selection.eventTypes],
      settings: { ...DEFAULT_GROUP_SETTINGS, ...settings },
      startPosition,
      createdAt: new Date(),
    });
    return { group: apiGroup(group) };
  }

  async describe(request: DescribeConsumerGroupRequest): Promise<DescribeConsumerGroupResponse> {
    checkNameOnly(request.name);
    const status = await this.groups.status(request.name);
    const store = this.store.groups;
    const parked = store ? await store.listParked(request.name, 0n, DESCRIBED_PARKED) : [];
    return {
      group: apiGroup(status.group),
      partitions: status.partitions.map((p) => ({ ...p, memberId: p.memberId ?? '', serverId: p.serverId ?? '', lagEntries: BigInt(p.lagEntries) })),
      members: status.members,
      parkedCount: BigInt(status.parkedCount),
      parked,
      headPosition: await this.store.feedHead(),
      readPosition: status.readPosition,
    };
  }

  async list(): Promise<ListConsumerGroupsResponse> {
    return { groups: (await this.groups.list()).map(apiGroup) };
  }

  async update(request: UpdateConsumerGroupRequest): Promise<UpdateConsumerGroupResponse> {
    const violations = new Violations();
    checkGroupName(violations, 'name', request.name);
    const settings = settingsOf(violations, 'settings', request.settings);
    violations.throwIfAny();
    const current = await this.groups.get(request.name);
    if (settings.partitions !== undefined && settings.partitions !== current.settings.partitions) {
      violations.add('settings.partitions', `cannot change (it is ${current.settings.partitions}): streams would move between partitions; create a new group instead`);
      violations.throwIfAny();
    }
    return { group: apiGroup(await this.groups.update(request.name, settings)) };
  }

  async delete(request: DeleteConsumerGroupRequest): Promise<DeleteConsumerGroupResponse> {
    checkNameOnly(request.name);
    await this.groups.delete(request.name);
    return {};
  }

  async reset(request: ResetConsumerGroupRequest): Promise<ResetConsumerGroupResponse> {
    const violations = new Violations();
    checkGroupName(violations, 'name', request.name);
    if (request.to?.$case === 'afterPosition') checkPosition(violations, 'after_position', request.to.value);
    violations.throwIfAny();
    const position = request.to?.$case === 'afterPosition' ? request.to.value : request.to?.$case === 'toNow' && request.to.value ? await this.store.feedHead() : 0n;
    await this.groups.reset(request.name, position);
    return { position };
  }

  /** Validates a Consume request; returns how to start its messages. */
  prepareConsume(request: ConsumeRequest, mayRead: StreamReadCheck | undefined): (lifetime: Lifetime) => Promise<AsyncIterable<ConsumeResponse>> {
    const violations = new Violations();
    checkGroupName(violations, 'group', request.group);
    if (!MEMBER_NAME.test(request.memberName)) violations.add('member_name', 'must be at most 128 printable ASCII characters');
    violations.throwIfAny();
    return async (lifetime) => {
      const group = await this.groups.get(request.group);
      if (mayRead && !mayRead(group.subtree.path)) throw new PermissionDeniedError('stream:read', group.subtree.path);
      const messages = await this.groups.join(request.group, {
        memberName: request.memberName,
        mayRead,
        lifetime,
        ...(request.maxDeliveriesPerMessage !== undefined ? { maxDeliveriesPerMessage: request.maxDeliveriesPerMessage } : {}),
      });
      return withGroup(messages, apiGroup(group));
    };
  }

  async ack(request: AckRequest): Promise<AckResponse> {
    const violations = new Violations();
    checkGroupName(violations, 'group', request.group);
    if (request.memberId === '') violations.add('member_id', 'is required (from the joined message of Consume)');
    request.positions.forEach((position, i) => checkPosition(violations, `positions[${i}]`, position));
    request.upTo.forEach((upTo, i) => checkPosition(violations, `up_to[${i}].position`, upTo.position));
    violations.throwIfAny();
    return this.groups.ack(request.group, request.memberId, request.positions, request.upTo);
  }
}

function checkNameOnly(name: string): void {
  const violations = new Violations();
  checkGroupName(violations, 'name', name);
  violations.throwIfAny();
}

/** The member's messages, with the group's definition in the first (`joined`). */
async function* withGroup(messages: AsyncIterable<ConsumeResponse>, group: ConsumerGroup): AsyncGenerator<ConsumeResponse> {
  for await (const message of messages) {
    if (message.message?.$case === 'joined') message.message.value.group = group;
    yield message;
  }
}
