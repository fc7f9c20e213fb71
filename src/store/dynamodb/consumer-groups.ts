import { randomUUID } from 'node:crypto';
import {
  ConditionalCheckFailedException,
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  TransactionCanceledException,
  UpdateItemCommand,
  type TransactWriteItem,
} from '@aws-sdk/client-dynamodb';
import { ConsumerGroupAlreadyExistsError, ConsumerGroupNotFoundError, CorruptDataError } from '../../core/errors';
import { definitionFromJson, definitionToJson } from '../consumer-group-json';
import { decodePartitionProgress, encodePartitionProgress } from '../partition-progress';
import type {
  ConsumerGroupDefinition,
  ConsumerGroupPartition,
  ConsumerGroupPartitionUpdate,
  ConsumerGroupServer,
  ConsumerGroupServerView,
  ConsumerGroupSettings,
  ConsumerGroupStore,
  ParkedEntry,
  Position,
  StoredConsumerGroup,
} from '../port';
import { cancellationReasons } from './aws-errors';
import type { DynamoDbContext } from './context';
import { transact } from './group-commit';
import { bigintOf, MAX_TRANSACTION_ITEMS, type Item } from './items';
import { queryPages } from './query-pages';
import { GroupAttr, SnapshotAttr } from './tables';
import { backoff, MAX_WRITE_ATTEMPTS } from './write-attempts';

/**
 * Consumer-group state in the snapshots table (docs/dynamodb.md, "Consumer groups"), under
 * partition keys that start with "$", which no stream path does (paths start with "/"), so that
 * no snapshot query ever meets them:
 *
 * - `$consumer-groups`, sort key = group name: the group's definition, its settings' revision and
 *   its incarnation (a random id given at creation).
 * - `$consumer-group/<incarnation>/<name>`: its partitions (sort key "p" + index, 4 digits) with
 *   position, revision, lease owner and expiry; and the servers serving it (sort key "s" + server
 *   id) with their live members and expiry. One Query reads both.
 * - `$consumer-group-parked/<incarnation>/<name>`, sort key = position (20 digits): parked entries.
 *
 * The incarnation keeps a group created again under a deleted one's name apart from anything
 * left of the old one (a deletion stopped half-way, a server still saving for it): every write
 * of a partition or a parked entry checks, in the same transaction, that the definition still
 * names that incarnation.
 */

/** The partition key of the group definitions. */
const REGISTRY = '$consumer-groups';

function stateKey(incarnation: string, name: string): string {
  return `$consumer-group/${incarnation}/${name}`;
}

function parkedKey(incarnation: string, name: string): string {
  return `$consumer-group-parked/${incarnation}/${name}`;
}

function partitionSortKey(partition: number): string {
  return `p${String(partition).padStart(4, '0')}`;
}

function positionSortKey(position: Position): string {
  return position.toString().padStart(20, '0');
}

/** The part of a definition stored as JSON (the name, creation time and revision have attributes). */
/** A stored definition and where its state is. */
interface Registered {
  group: StoredConsumerGroup;
  incarnation: string;
}

export class DynamoDbConsumerGroups implements ConsumerGroupStore {
  /** Incarnations of the groups this replica used: every write checks it is still current. */
  private readonly incarnations = new Map<string, string>();

  constructor(
    private readonly context: DynamoDbContext,
    /** Resolves once the tables are ready; rejects after the store is closed. */
    private readonly ready: () => Promise<void>,
  ) {}

  private get table(): string {
    return this.context.tables.snapshots;
  }

  async createGroup(definition: ConsumerGroupDefinition): Promise<StoredConsumerGroup> {
    await this.ready();
    const { name } = definition;
    const incarnation = randomUUID();
    const partitions: Item[] = [];
    for (let partition = 0; partition < definition.settings.partitions; partition++) {
      partitions.push(partitionItem(incarnation, name, { partition, position: definition.startPosition, revision: 1n }));
    }
    // One transaction when it fits (the default 16 partitions do): the definition with the first
    // 99 partitions. Past that, the definition is marked "creating" (invisible to getGroup and
    // listGroups) until the other partitions are written, then unmarked.
    const first = partitions.splice(0, MAX_TRANSACTION_ITEMS - 1);
    const creating = partitions.length > 0;
    const registry: Item = {
      [SnapshotAttr.stream]: { S: REGISTRY },
      [SnapshotAttr.perspective]: { S: name },
      [GroupAttr.definition]: { S: definitionToJson(definition) },
      [GroupAttr.revision]: { N: '1' },
      [GroupAttr.createdAt]: { N: String(definition.createdAt.getTime()) },
      [GroupAttr.incarnation]: { S: incarnation },
      ...(creating ? { [GroupAttr.creating]: { BOOL: true } } : {}),
    };
    try {
      await transact(this.context, [
        { Put: { TableName: this.table, Item: registry, ConditionExpression: 'attribute_not_exists(#c)', ExpressionAttributeNames: { '#c': SnapshotAttr.perspective } } },
        ...first.map((item): TransactWriteItem => ({ Put: { TableName: this.table, Item: item } })),
      ]);
    } catch (error) {
      if (error instanceof TransactionCanceledException && cancellationReasons(error)?.[0]?.code === 'condition') {
        throw new ConsumerGroupAlreadyExistsError(name);
      }
      throw error;
    }
    if (creating) {
      for (let i = 0; i < partitions.length; i += MAX_TRANSACTION_ITEMS) {
        const chunk = partitions.slice(i, i + MAX_TRANSACTION_ITEMS);
        await transact(this.context, chunk.map((item): TransactWriteItem => ({ Put: { TableName: this.table, Item: item } })));
      }
      await this.context.call(() =>
        this.context.client.send(
          new UpdateItemCommand({
            TableName: this.table,
            Key: registryKey(name),
            UpdateExpression: 'REMOVE #w',
            ExpressionAttributeNames: { '#w': GroupAttr.creating },
          }),
        ),
      );
    }
    this.incarnations.set(name, incarnation);
    return { ...definition, revision: 1n };
  }

  async getGroup(name: string): Promise<StoredConsumerGroup | undefined> {
    return (await this.registered(name))?.group;
  }

  async listGroups(): Promise<StoredConsumerGroup[]> {
    await this.ready();
    const groups: StoredConsumerGroup[] = [];
    for await (const page of queryPages(this.context, {
      TableName: this.table,
      KeyConditionExpression: '#s = :s',
      ExpressionAttributeNames: { '#s': SnapshotAttr.stream },
      ExpressionAttributeValues: { ':s': { S: REGISTRY } },
      ConsistentRead: true,
    })) {
      for (const item of page.Items ?? []) {
        if (item[GroupAttr.creating]) continue;
        groups.push(fromItem(item).group);
      }
    }
    return groups;
  }

  async updateGroupSettings(name: string, settings: ConsumerGroupSettings, expectedRevision: bigint): Promise<StoredConsumerGroup | undefined> {
    const current = await this.registered(name);
    if (!current) throw new ConsumerGroupNotFoundError(name);
    if (current.group.revision !== expectedRevision) return undefined;
    const updated = { ...current.group, settings, revision: expectedRevision + 1n };
    try {
      await this.context.call(() =>
        this.context.client.send(
          new UpdateItemCommand({
            TableName: this.table,
            Key: registryKey(name),
            UpdateExpression: 'SET #d = :d, #r = :next',
            ConditionExpression: '#r = :expected AND #i = :i',
            ExpressionAttributeNames: { '#d': GroupAttr.definition, '#r': GroupAttr.revision, '#i': GroupAttr.incarnation },
            ExpressionAttributeValues: {
              ':d': { S: definitionToJson(updated) },
              ':next': { N: updated.revision.toString() },
              ':expected': { N: expectedRevision.toString() },
              ':i': { S: current.incarnation },
            },
          }),
        ),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      // Updated by someone else meanwhile, or deleted.
      if (!(await this.registered(name))) throw new ConsumerGroupNotFoundError(name);
      return undefined;
    }
    return updated;
  }

  /**
   * Deletes the definition first (the group is gone from then on), then its partitions, servers
   * and parked entries. A deletion stopped half-way leaves items under the old incarnation's
   * keys, which nothing reads any more.
   */
  async deleteGroup(name: string): Promise<boolean> {
    await this.ready();
    const { Attributes: old } = await this.context.call(() =>
      this.context.client.send(new DeleteItemCommand({ TableName: this.table, Key: registryKey(name), ReturnValues: 'ALL_OLD' })),
    );
    this.incarnations.delete(name);
    if (!old) return false;
    const incarnation = old[GroupAttr.incarnation]?.S ?? '';
    for (const key of [stateKey(incarnation, name), parkedKey(incarnation, name)]) {
      let deletes: TransactWriteItem[] = [];
      for await (const page of queryPages(this.context, {
        TableName: this.table,
        KeyConditionExpression: '#s = :s',
        ProjectionExpression: '#s, #c',
        ExpressionAttributeNames: { '#s': SnapshotAttr.stream, '#c': SnapshotAttr.perspective },
        ExpressionAttributeValues: { ':s': { S: key } },
      })) {
        for (const item of page.Items ?? []) {
          deletes.push({ Delete: { TableName: this.table, Key: { [SnapshotAttr.stream]: { S: key }, [SnapshotAttr.perspective]: item[SnapshotAttr.perspective] ?? { S: '' } } } });
          if (deletes.length === MAX_TRANSACTION_ITEMS) {
            await transact(this.context, deletes);
            deletes = [];
          }
        }
      }
      if (deletes.length > 0) await transact(this.context, deletes);
    }
    return true;
  }

  async getGroupPartitions(name: string): Promise<ConsumerGroupPartition[]> {
    const incarnation = await this.knownIncarnation(name);
    if (incarnation === undefined) return [];
    return (await this.queryState(incarnation, name, 'p')).map(readPartition);
  }

  /**
   * One transaction: a check that the group is still this incarnation, the parked entries (a Put
   * again changes nothing), and each partition update conditional on its revision. A partition
   * whose revision differs cancels the transaction: it is dropped and the rest written again.
   *
   * At most 100 items per transaction: past that, the parked entries are written first (in
   * transactions of 99), then the partitions (likewise). Parked entries before positions keeps
   * what the single transaction guarantees: a position is never stored past a parked entry that
   * is not stored.
   */
  async saveGroupPartitions(name: string, updates: ConsumerGroupPartitionUpdate[], parked: ParkedEntry[]): Promise<Array<ConsumerGroupPartition | undefined>> {
    const incarnation = await this.incarnationOf(name);
    const results: Array<ConsumerGroupPartition | undefined> = updates.map(() => undefined);
    const parkedPuts = parked.map((entry): TransactWriteItem => ({ Put: { TableName: this.table, Item: parkedItem(incarnation, name, entry) } }));
    const room = MAX_TRANSACTION_ITEMS - 1;
    const indexes = updates.map((_, i) => i);
    if (parkedPuts.length + updates.length <= room) {
      await this.saveChunk(name, incarnation, parkedPuts, updates, indexes, results);
    } else {
      for (let i = 0; i < parkedPuts.length; i += room) await this.saveChunk(name, incarnation, parkedPuts.slice(i, i + room), [], [], results);
      for (let i = 0; i < updates.length; i += room) await this.saveChunk(name, incarnation, [], updates, indexes.slice(i, i + room), results);
    }
    return results;
  }

  /** Writes `puts` and the updates at `indexes`, dropping those whose revision differs; fills `results`. */
  private async saveChunk(
    name: string,
    incarnation: string,
    puts: TransactWriteItem[],
    updates: ConsumerGroupPartitionUpdate[],
    indexes: number[],
    results: Array<ConsumerGroupPartition | undefined>,
  ): Promise<void> {
    let pending = indexes;
    for (let attempt = 0; ; attempt++) {
      if (puts.length === 0 && pending.length === 0) return;
      const items: TransactWriteItem[] = [
        {
          ConditionCheck: {
            TableName: this.table,
            Key: registryKey(name),
            ConditionExpression: '#i = :i AND attribute_not_exists(#w)',
            ExpressionAttributeNames: { '#i': GroupAttr.incarnation, '#w': GroupAttr.creating },
            ExpressionAttributeValues: { ':i': { S: incarnation } },
          },
        },
        ...puts,
        ...pending.map((index) => this.partitionUpdate(incarnation, name, updates[index] as ConsumerGroupPartitionUpdate)),
      ];
      try {
        await transact(this.context, items);
        for (const index of pending) {
          const update = updates[index] as ConsumerGroupPartitionUpdate;
          results[index] = {
            partition: update.partition,
            position: update.position,
            revision: update.expectedRevision + 1n,
            ...(update.owner !== undefined ? { owner: update.owner } : {}),
            ...(update.leaseExpiresAt !== undefined ? { leaseExpiresAt: update.leaseExpiresAt } : {}),
            ...(update.progress ? { progress: update.progress } : {}),
          };
        }
        return;
      } catch (error) {
        if (!(error instanceof TransactionCanceledException) || attempt >= MAX_WRITE_ATTEMPTS) throw error;
        const reasons = cancellationReasons(error);
        if (reasons?.[0]?.code === 'condition') {
          this.incarnations.delete(name);
          throw new ConsumerGroupNotFoundError(name);
        }
        const failed = new Set<number>();
        reasons?.forEach((reason, i) => {
          const index = pending[i - 1 - puts.length];
          if (reason.code === 'condition' && index !== undefined) failed.add(index);
        });
        if (failed.size === 0) {
          // A rival transaction on the same items (or no reasons given): again, after a pause.
          await backoff(attempt);
          continue;
        }
        pending = pending.filter((index) => !failed.has(index));
      }
    }
  }

  private partitionUpdate(incarnation: string, name: string, update: ConsumerGroupPartitionUpdate): TransactWriteItem {
    const held = update.owner !== undefined && update.leaseExpiresAt !== undefined;
    const set = ['#q = :q', '#r = :next'];
    const remove: string[] = [];
    if (held) set.push('#o = :o', '#x = :x');
    else remove.push('#o', '#x');
    if (update.progress) set.push('#g = :g');
    else remove.push('#g');
    return {
      Update: {
        TableName: this.table,
        Key: { [SnapshotAttr.stream]: { S: stateKey(incarnation, name) }, [SnapshotAttr.perspective]: { S: partitionSortKey(update.partition) } },
        UpdateExpression: `SET ${set.join(', ')}${remove.length > 0 ? ` REMOVE ${remove.join(', ')}` : ''}`,
        ConditionExpression: '#r = :expected',
        ExpressionAttributeNames: { '#q': GroupAttr.position, '#r': GroupAttr.revision, '#o': GroupAttr.owner, '#x': GroupAttr.expiresAt, '#g': GroupAttr.progress },
        ExpressionAttributeValues: {
          ':q': { N: update.position.toString() },
          ':next': { N: (update.expectedRevision + 1n).toString() },
          ':expected': { N: update.expectedRevision.toString() },
          ...(held ? { ':o': { S: update.owner ?? '' }, ':x': { N: String(update.leaseExpiresAt?.getTime() ?? 0) } } : {}),
          ...(update.progress ? { ':g': { B: encodePartitionProgress(update.position, update.progress) } } : {}),
        },
      },
    };
  }

  async listParked(name: string, after: Position, limit: number): Promise<ParkedEntry[]> {
    const registered = await this.registered(name);
    if (!registered) return [];
    const entries: ParkedEntry[] = [];
    for await (const page of queryPages(
      this.context,
      {
        TableName: this.table,
        KeyConditionExpression: '#s = :s AND #c > :after',
        ExpressionAttributeNames: { '#s': SnapshotAttr.stream, '#c': SnapshotAttr.perspective },
        ExpressionAttributeValues: { ':s': { S: parkedKey(registered.incarnation, name) }, ':after': { S: positionSortKey(after) } },
        ConsistentRead: true,
      },
      { limit: () => Math.min(limit - entries.length, 1000) },
    )) {
      for (const item of page.Items ?? []) entries.push(readParked(item));
      if (entries.length >= limit) break;
    }
    return entries.slice(0, limit);
  }

  async unparkAfter(name: string, after: Position): Promise<number> {
    const registered = await this.registered(name);
    if (!registered) return 0;
    const key = parkedKey(registered.incarnation, name);
    let removed = 0;
    let deletes: TransactWriteItem[] = [];
    for await (const page of queryPages(this.context, {
      TableName: this.table,
      KeyConditionExpression: '#s = :s AND #c > :after',
      ProjectionExpression: '#s, #c',
      ExpressionAttributeNames: { '#s': SnapshotAttr.stream, '#c': SnapshotAttr.perspective },
      ExpressionAttributeValues: { ':s': { S: key }, ':after': { S: positionSortKey(after) } },
      ConsistentRead: true,
    })) {
      for (const item of page.Items ?? []) {
        deletes.push({ Delete: { TableName: this.table, Key: { [SnapshotAttr.stream]: { S: key }, [SnapshotAttr.perspective]: item[SnapshotAttr.perspective] ?? { S: '' } } } });
        removed++;
        if (deletes.length === MAX_TRANSACTION_ITEMS) {
          await transact(this.context, deletes);
          deletes = [];
        }
      }
    }
    if (deletes.length > 0) await transact(this.context, deletes);
    return removed;
  }

  async countParked(name: string): Promise<number> {
    const registered = await this.registered(name);
    if (!registered) return 0;
    let count = 0;
    for await (const page of queryPages(this.context, {
      TableName: this.table,
      KeyConditionExpression: '#s = :s',
      ExpressionAttributeNames: { '#s': SnapshotAttr.stream },
      ExpressionAttributeValues: { ':s': { S: parkedKey(registered.incarnation, name) } },
      Select: 'COUNT',
      ConsistentRead: true,
    })) {
      count += page.Count ?? 0;
    }
    return count;
  }

  async saveGroupServer(name: string, server: ConsumerGroupServer): Promise<void> {
    const incarnation = await this.incarnationOf(name);
    const key = { [SnapshotAttr.stream]: { S: stateKey(incarnation, name) }, [SnapshotAttr.perspective]: { S: `s${server.serverId}` } };
    if (server.members === 0) {
      await this.context.call(() => this.context.client.send(new DeleteItemCommand({ TableName: this.table, Key: key })));
      return;
    }
    const item: Item = { ...key, [GroupAttr.members]: { N: String(server.members) }, [GroupAttr.expiresAt]: { N: String(server.expiresAt.getTime()) } };
    if (server.view) item[GroupAttr.view] = { S: viewToJson(server.view) };
    await this.context.call(() => this.context.client.send(new PutItemCommand({ TableName: this.table, Item: item })));
  }

  async listGroupServers(name: string): Promise<ConsumerGroupServer[]> {
    const incarnation = await this.knownIncarnation(name);
    if (incarnation === undefined) return [];
    return (await this.queryState(incarnation, name, 's')).map((item) => {
      const server: ConsumerGroupServer = {
        serverId: (item[SnapshotAttr.perspective]?.S ?? '').slice(1),
        members: Number(bigintOf(item, GroupAttr.members)),
        expiresAt: new Date(Number(bigintOf(item, GroupAttr.expiresAt))),
      };
      const view = viewFromJson(item[GroupAttr.view]?.S);
      if (view) server.view = view;
      return server;
    });
  }

  /** The items of the group's state partition whose sort key starts with `prefix`, in order. */
  private async queryState(incarnation: string, name: string, prefix: string): Promise<Item[]> {
    const items: Item[] = [];
    for await (const page of queryPages(this.context, {
      TableName: this.table,
      KeyConditionExpression: '#s = :s AND begins_with(#c, :prefix)',
      ExpressionAttributeNames: { '#s': SnapshotAttr.stream, '#c': SnapshotAttr.perspective },
      ExpressionAttributeValues: { ':s': { S: stateKey(incarnation, name) }, ':prefix': { S: prefix } },
      ConsistentRead: true,
    })) {
      items.push(...(page.Items ?? []));
    }
    return items;
  }

  /** The group's definition as stored now (a strongly consistent read); undefined while it is being created. */
  private async registered(name: string): Promise<Registered | undefined> {
    await this.ready();
    const { Item: item } = await this.context.call(() =>
      this.context.client.send(new GetItemCommand({ TableName: this.table, Key: registryKey(name), ConsistentRead: true })),
    );
    if (!item || item[GroupAttr.creating]) {
      this.incarnations.delete(name);
      return undefined;
    }
    const registered = fromItem(item);
    this.incarnations.set(name, registered.incarnation);
    return registered;
  }

  /**
   * The group's incarnation, remembered, else read (undefined: no such group). The servers'
   * rounds read partitions and records with it and no read of the definition; a group deleted
   * on another replica has no items left under it (its rounds read the definition too).
   */
  private async knownIncarnation(name: string): Promise<string | undefined> {
    await this.ready();
    return this.incarnations.get(name) ?? (await this.registered(name))?.incarnation;
  }

  /** The group's incarnation, remembered (writes check it), else read. */
  private async incarnationOf(name: string): Promise<string> {
    const incarnation = await this.knownIncarnation(name);
    if (incarnation === undefined) throw new ConsumerGroupNotFoundError(name);
    return incarnation;
  }
}

function registryKey(name: string): Item {
  return { [SnapshotAttr.stream]: { S: REGISTRY }, [SnapshotAttr.perspective]: { S: name } };
}

function partitionItem(incarnation: string, name: string, partition: ConsumerGroupPartition): Item {
  return {
    [SnapshotAttr.stream]: { S: stateKey(incarnation, name) },
    [SnapshotAttr.perspective]: { S: partitionSortKey(partition.partition) },
    [GroupAttr.position]: { N: partition.position.toString() },
    [GroupAttr.revision]: { N: partition.revision.toString() },
  };
}

function readPartition(item: Item): ConsumerGroupPartition {
  const key = item[SnapshotAttr.perspective]?.S ?? '';
  const owner = item[GroupAttr.owner]?.S;
  const expiresAt = item[GroupAttr.expiresAt]?.N;
  const position = bigintOf(item, GroupAttr.position);
  const storedProgress = item[GroupAttr.progress]?.B;
  const progress = storedProgress === undefined ? undefined : decodePartitionProgress(position, storedProgress);
  return {
    partition: Number(key.slice(1)),
    position,
    revision: bigintOf(item, GroupAttr.revision),
    ...(owner !== undefined ? { owner } : {}),
    ...(expiresAt !== undefined ? { leaseExpiresAt: new Date(Number(expiresAt)) } : {}),
    ...(progress ? { progress } : {}),
  };
}

function parkedItem(incarnation: string, name: string, entry: ParkedEntry): Item {
  return {
    [SnapshotAttr.stream]: { S: parkedKey(incarnation, name) },
    [SnapshotAttr.perspective]: { S: positionSortKey(entry.position) },
    [GroupAttr.position]: { N: entry.position.toString() },
    [GroupAttr.stream]: { S: entry.stream },
    [GroupAttr.version]: { N: entry.version.toString() },
    [GroupAttr.deliveries]: { N: String(entry.deliveries) },
    [GroupAttr.reason]: { S: entry.reason },
    [GroupAttr.createdAt]: { N: String(entry.parkedAt.getTime()) },
  };
}

function readParked(item: Item): ParkedEntry {
  return {
    position: bigintOf(item, GroupAttr.position),
    stream: item[GroupAttr.stream]?.S ?? '',
    version: bigintOf(item, GroupAttr.version),
    deliveries: Number(bigintOf(item, GroupAttr.deliveries)),
    reason: item[GroupAttr.reason]?.S ?? '',
    parkedAt: new Date(Number(bigintOf(item, GroupAttr.createdAt))),
  };
}

function fromItem(item: Item): Registered {
  const name = item[SnapshotAttr.perspective]?.S;
  const definition = item[GroupAttr.definition]?.S;
  const incarnation = item[GroupAttr.incarnation]?.S;
  if (name === undefined || definition === undefined || incarnation === undefined) throw new CorruptDataError('a consumer group item lacks its definition');
  return {
    incarnation,
    group: {
      name,
      ...definitionFromJson(definition),
      createdAt: new Date(Number(bigintOf(item, GroupAttr.createdAt))),
      revision: bigintOf(item, GroupAttr.revision),
    },
  };
}

/** A server's view as JSON: positions as decimal strings, times as epoch ms. */
function viewToJson(view: ConsumerGroupServerView): string {
  return JSON.stringify({
    members: view.members.map((m) => ({ ...m, joinedAt: m.joinedAt.getTime() })),
    partitions: view.partitions.map((p) => ({ ...p, position: p.position.toString(), memberId: p.memberId ?? '' })),
  });
}

interface ViewJson {
  members: Array<{ memberId: string; memberName: string; partitions: number[]; inFlight: number; joinedAt: number }>;
  partitions: Array<{ partition: number; position: string; memberId: string; inFlight: number; lagEntries: number; lagSeconds: number }>;
}

/**
 * Reads a view written by viewToJson. The view only informs DescribeConsumerGroup, so one that does
 * not read (written by another version) is left out rather than failing the coordination.
 */
function viewFromJson(json: string | undefined): ConsumerGroupServerView | undefined {
  if (json === undefined) return undefined;
  try {
    const parsed = JSON.parse(json) as ViewJson;
    return {
      members: parsed.members.map((m) => ({ ...m, joinedAt: new Date(m.joinedAt) })),
      partitions: parsed.partitions.map((p) => ({ ...p, position: BigInt(p.position), memberId: p.memberId === '' ? undefined : p.memberId })),
    };
  } catch {
    return undefined;
  }
}
