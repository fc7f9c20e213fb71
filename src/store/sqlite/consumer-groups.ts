import type Database from 'better-sqlite3';
import { ConsumerGroupAlreadyExistsError, ConsumerGroupNotFoundError } from '../../core/errors';
import { definitionFromJson, definitionToJson } from '../consumer-group-json';
import { decodePartitionProgress, encodePartitionProgress } from '../partition-progress';
import type {
  ConsumerGroupDefinition,
  ConsumerGroupPartition,
  ConsumerGroupPartitionUpdate,
  ConsumerGroupServer,
  ConsumerGroupSettings,
  ConsumerGroupStore,
  ParkedEntry,
  Position,
  StoredConsumerGroup,
} from '../port';

interface GroupRow {
  name: string;
  definition: string;
  revision: bigint;
  created_at: bigint;
}

interface PartitionRow {
  partition: bigint;
  position: bigint;
  revision: bigint;
  owner: string | null;
  lease_expires_at: bigint | null;
  progress: Buffer | null;
}

interface ParkedRow {
  position: bigint;
  stream: string;
  version: bigint;
  deliveries: bigint;
  reason: string;
  parked_at: bigint;
}

/** The part of a definition stored as JSON (the name and creation time have columns). */
/**
 * Consumer-group state in the embedded store's database (schema.ts). Writes go through the
 * store's group commit (`write`), so they are as durable as appends and ordered with them.
 */
export class SqliteConsumerGroups implements ConsumerGroupStore {
  private readonly statements;
  /**
   * Servers' membership records, in memory: one process opens the database, so the only server
   * recorded is this one, and a record does not need to outlive it.
   */
  private readonly servers = new Map<string, Map<string, ConsumerGroupServer>>();

  constructor(
    db: Database.Database,
    private readonly write: <T>(apply: () => T) => Promise<T>,
    private readonly ensureOpen: () => void,
  ) {
    this.statements = {
      group: db.prepare<[string], GroupRow>('SELECT name, definition, revision, created_at FROM consumer_groups WHERE name = ?'),
      groups: db.prepare<[], GroupRow>('SELECT name, definition, revision, created_at FROM consumer_groups ORDER BY name'),
      insertGroup: db.prepare<[string, string, bigint]>(
        'INSERT INTO consumer_groups (name, definition, revision, created_at) VALUES (?, ?, 1, ?)',
      ),
      updateGroup: db.prepare<[string, string, bigint]>(
        'UPDATE consumer_groups SET definition = ?, revision = revision + 1 WHERE name = ? AND revision = ?',
      ),
      deleteGroup: db.prepare<[string]>('DELETE FROM consumer_groups WHERE name = ?'),
      deletePartitions: db.prepare<[string]>('DELETE FROM consumer_group_partitions WHERE group_name = ?'),
      deleteParked: db.prepare<[string]>('DELETE FROM consumer_group_parked WHERE group_name = ?'),
      insertPartition: db.prepare<[string, number, bigint]>(
        'INSERT INTO consumer_group_partitions (group_name, partition, position, revision) VALUES (?, ?, ?, 1)',
      ),
      partitions: db.prepare<[string], PartitionRow>(
        `SELECT partition, position, revision, owner, lease_expires_at, progress FROM consumer_group_partitions
         WHERE group_name = ? ORDER BY partition`,
      ),
      partition: db.prepare<[string, number], PartitionRow>(
        `SELECT partition, position, revision, owner, lease_expires_at, progress FROM consumer_group_partitions
         WHERE group_name = ? AND partition = ?`,
      ),
      savePartition: db.prepare<[bigint, string | null, bigint | null, Buffer | null, string, number, bigint]>(
        `UPDATE consumer_group_partitions SET position = ?, owner = ?, lease_expires_at = ?, progress = ?, revision = revision + 1
         WHERE group_name = ? AND partition = ? AND revision = ?`,
      ),
      insertParked: db.prepare<[string, bigint, string, bigint, number, string, bigint]>(
        `INSERT OR IGNORE INTO consumer_group_parked (group_name, position, stream, version, deliveries, reason, parked_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      parked: db.prepare<[string, bigint, number], ParkedRow>(
        `SELECT position, stream, version, deliveries, reason, parked_at FROM consumer_group_parked
         WHERE group_name = ? AND position > ? ORDER BY position LIMIT ?`,
      ),
      countParked: db.prepare<[string], { count: bigint }>('SELECT COUNT(*) AS count FROM consumer_group_parked WHERE group_name = ?'),
      unparkAfter: db.prepare<[string, bigint]>('DELETE FROM consumer_group_parked WHERE group_name = ? AND position > ?'),
    };
  }

  createGroup(definition: ConsumerGroupDefinition): Promise<StoredConsumerGroup> {
    return this.write(() => {
      const { name } = definition;
      if (this.statements.group.get(name)) throw new ConsumerGroupAlreadyExistsError(name);
      this.statements.insertGroup.run(name, definitionToJson(definition), BigInt(definition.createdAt.getTime()));
      for (let partition = 0; partition < definition.settings.partitions; partition++) {
        this.statements.insertPartition.run(name, partition, definition.startPosition);
      }
      return { ...definition, revision: 1n };
    });
  }

  async getGroup(name: string): Promise<StoredConsumerGroup | undefined> {
    this.ensureOpen();
    const row = this.statements.group.get(name);
    return row && fromRow(row);
  }

  async listGroups(): Promise<StoredConsumerGroup[]> {
    this.ensureOpen();
    return this.statements.groups.all().map(fromRow);
  }

  updateGroupSettings(name: string, settings: ConsumerGroupSettings, expectedRevision: bigint): Promise<StoredConsumerGroup | undefined> {
    return this.write(() => {
      const row = this.statements.group.get(name);
      if (!row) throw new ConsumerGroupNotFoundError(name);
      const current = fromRow(row);
      if (current.revision !== expectedRevision) return undefined;
      const updated = { ...current, settings };
      this.statements.updateGroup.run(definitionToJson(updated), name, expectedRevision);
      return { ...updated, revision: expectedRevision + 1n };
    });
  }

  deleteGroup(name: string): Promise<boolean> {
    return this.write(() => {
      this.servers.delete(name);
      this.statements.deletePartitions.run(name);
      this.statements.deleteParked.run(name);
      return this.statements.deleteGroup.run(name).changes > 0;
    });
  }

  async getGroupPartitions(name: string): Promise<ConsumerGroupPartition[]> {
    this.ensureOpen();
    return this.statements.partitions.all(name).map(toPartition);
  }

  saveGroupPartitions(
    name: string,
    updates: ConsumerGroupPartitionUpdate[],
    parked: ParkedEntry[],
  ): Promise<Array<ConsumerGroupPartition | undefined>> {
    return this.write(() => {
      if (!this.statements.group.get(name)) throw new ConsumerGroupNotFoundError(name);
      for (const entry of parked) {
        this.statements.insertParked.run(
          name,
          entry.position,
          entry.stream,
          entry.version,
          entry.deliveries,
          entry.reason,
          BigInt(entry.parkedAt.getTime()),
        );
      }
      return updates.map((update) => {
        const lease = update.leaseExpiresAt ? BigInt(update.leaseExpiresAt.getTime()) : null;
        const changed = this.statements.savePartition.run(
          update.position,
          update.owner ?? null,
          lease,
          update.progress ? encodePartitionProgress(update.position, update.progress) : null,
          name,
          update.partition,
          update.expectedRevision,
        ).changes;
        if (changed === 0) return undefined;
        const row = this.statements.partition.get(name, update.partition);
        return row && toPartition(row);
      });
    });
  }

  async listParked(name: string, after: Position, limit: number): Promise<ParkedEntry[]> {
    this.ensureOpen();
    return this.statements.parked.all(name, after, limit).map((row) => ({
      position: row.position,
      stream: row.stream,
      version: row.version,
      deliveries: Number(row.deliveries),
      reason: row.reason,
      parkedAt: new Date(Number(row.parked_at)),
    }));
  }

  async unparkAfter(name: string, after: Position): Promise<number> {
    this.ensureOpen();
    return this.statements.unparkAfter.run(name, after).changes;
  }

  async countParked(name: string): Promise<number> {
    this.ensureOpen();
    return Number(this.statements.countParked.get(name)?.count ?? 0n);
  }

  async saveGroupServer(name: string, server: ConsumerGroupServer): Promise<void> {
    this.ensureOpen();
    if (!this.statements.group.get(name)) throw new ConsumerGroupNotFoundError(name);
    let servers = this.servers.get(name);
    if (server.members === 0) {
      servers?.delete(server.serverId);
      return;
    }
    if (!servers) this.servers.set(name, (servers = new Map<string, ConsumerGroupServer>()));
    servers.set(server.serverId, { ...server });
  }

  async listGroupServers(name: string): Promise<ConsumerGroupServer[]> {
    this.ensureOpen();
    const servers = [...(this.servers.get(name)?.values() ?? [])];
    return servers.sort((a, b) => (a.serverId < b.serverId ? -1 : a.serverId > b.serverId ? 1 : 0)).map((s) => ({ ...s }));
  }
}

function fromRow(row: GroupRow): StoredConsumerGroup {
  return {
    name: row.name,
    ...definitionFromJson(row.definition),
    createdAt: new Date(Number(row.created_at)),
    revision: row.revision,
  };
}

function toPartition(row: PartitionRow): ConsumerGroupPartition {
  const progress = row.progress === null ? undefined : decodePartitionProgress(row.position, row.progress);
  return {
    partition: Number(row.partition),
    position: row.position,
    revision: row.revision,
    ...(row.owner !== null ? { owner: row.owner } : {}),
    ...(row.lease_expires_at !== null ? { leaseExpiresAt: new Date(Number(row.lease_expires_at)) } : {}),
    ...(progress ? { progress } : {}),
  };
}
