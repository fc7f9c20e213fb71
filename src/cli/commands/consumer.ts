import { parseArgs } from 'node:util';
import type { ServiceError } from '@grpc/grpc-js';
import { ConsumeRequest, type ConsumeResponse, type ConsumerGroup } from '../../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { CONNECTION_HELP, CONNECTION_OPTIONS, connect, type Connection } from './connection';
import { UsageError } from './exit-codes';

/** Help of `eventhorizon consumer`. */
export const CONSUMER_USAGE = `Usage: eventhorizon consumer <command> GROUP [options]

Consumer groups: durable readers of the feed whose work is shared by their members
(docs/consumer-groups.md).

  consumer create GROUP --stream PATH [--types T,T] [--only-stream] [--from P | --from-now]
                  [--partitions N] [--ack-wait-ms MS] [--max-deliveries N] [--max-in-flight N]
  consumer ls                     list the groups
  consumer describe GROUP         positions, lag, members and parked entries of a group
  consumer reset GROUP [--from P | --from-now]   move every partition (default: the beginning)
  consumer delete GROUP
  consumer tail GROUP             join GROUP as a member and print (and ack) each delivery;
                                  Ctrl-C leaves

${CONNECTION_HELP}
`;

const OPTIONS = {
  ...CONNECTION_OPTIONS,
  stream: { type: 'string' },
  types: { type: 'string' },
  'only-stream': { type: 'boolean' },
  from: { type: 'string' },
  'from-now': { type: 'boolean' },
  partitions: { type: 'string' },
  'ack-wait-ms': { type: 'string' },
  'max-deliveries': { type: 'string' },
  'max-in-flight': { type: 'string' },
} as const;

/** `eventhorizon consumer ...` */
export async function consumerCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  const [command, name] = positionals;
  if (values.help || command === undefined) {
    process.stdout.write(CONSUMER_USAGE);
    return;
  }
  if (command !== 'ls' && name === undefined) throw new UsageError(`consumer ${command} needs a GROUP name`);
  const group = name ?? '';
  const json = values.json === true;
  const api = connect(values);
  try {
    switch (command) {
      case 'create': {
        if (values.stream === undefined) throw new UsageError('consumer create needs --stream PATH');
        const created = await api.createConsumerGroup({
          name: group,
          selector: {
            stream: values.stream,
            excludeDescendants: values['only-stream'] === true,
            eventTypes: values.types === undefined ? [] : values.types.split(',').map((t) => t.trim()).filter((t) => t !== ''),
          },
          ...startOf(values.from, values['from-now'], 'start'),
          settings: {
            partitions: optionalNumber(values.partitions, '--partitions'),
            ackWaitMs: optionalNumber(values['ack-wait-ms'], '--ack-wait-ms'),
            maxDeliveries: optionalNumber(values['max-deliveries'], '--max-deliveries'),
            maxInFlight: optionalNumber(values['max-in-flight'], '--max-in-flight'),
          },
        });
        return write(json, created.group ? groupJson(created.group) : {}, created.group ? describeGroup(created.group) : '');
      }
      case 'ls': {
        const { groups } = await api.listConsumerGroups({});
        return write(json, groups.map(groupJson), groups.map(describeGroup).join('\n'));
      }
      case 'describe': {
        const d = await api.describeConsumerGroup({ name: group });
        const lines = [
          d.group ? describeGroup(d.group) : group,
          `head ${d.headPosition}, read ${d.readPosition}, parked ${d.parkedCount}`,
          'partition  position  member                                in-flight  lag  lag-s',
          ...d.partitions.map((p) => `${String(p.partition).padEnd(9)}  ${String(p.position).padEnd(8)}  ${(p.memberId || '-').padEnd(36)}  ${String(p.inFlight).padEnd(9)}  ${String(p.lagEntries).padEnd(3)}  ${p.lagSeconds.toFixed(1)}`),
          ...d.members.map((m) => `member ${m.memberId} ${m.memberName} partitions [${m.partitions.join(',')}] in flight ${m.inFlight}`),
          ...d.parked.map((p) => `parked @${p.position} ${p.stream}@${p.version} after ${p.deliveries} deliveries (${p.reason})`),
        ];
        return write(json, toJson(d), lines.join('\n'));
      }
      case 'reset': {
        const reset = await api.resetConsumerGroup({ name: group, ...startOf(values.from, values['from-now'], 'to') });
        return write(json, { position: reset.position.toString() }, `${group}: every partition after position ${reset.position}`);
      }
      case 'delete':
        await api.deleteConsumerGroup({ name: group });
        return write(json, { deleted: group }, `${group}: deleted`);
      case 'tail':
        return await tail(api, group, json);
      default:
        throw new UsageError(`unknown consumer command "${command}"`);
    }
  } finally {
    api.close();
  }
}

/** Joins the group and prints each delivery, acking it; Ctrl-C leaves. */
async function tail(api: Connection, group: string, json: boolean): Promise<void> {
  const call = api.client.consume(ConsumeRequest.fromPartial({ group, memberName: 'eventhorizon consumer tail' }));
  let memberId = '';
  const stop = () => call.cancel();
  process.once('SIGINT', stop);
  try {
    await new Promise<void>((resolve, reject) => {
      call.on('data', ({ message }: ConsumeResponse) => {
        if (message?.$case === 'joined') {
          memberId = message.value.memberId;
          process.stderr.write(`joined ${group} as ${memberId}\n`);
        } else if (message?.$case === 'assignment') {
          process.stderr.write(`partitions [${message.value.partitions.join(',')}]\n`);
        } else if (message?.$case === 'delivery' && message.value.entry) {
          const { entry, partition, deliveryCount } = message.value;
          const summary = { position: entry.position.toString(), stream: entry.stream, version: entry.version.toString(), partition, deliveryCount, types: entry.events.map((e) => e.type) };
          process.stdout.write(json ? `${JSON.stringify(summary)}\n` : `@${entry.position} ${entry.stream}@${entry.version} partition ${partition} delivery ${deliveryCount} ${summary.types.join(',')}\n`);
          api.ack({ group, memberId, positions: [entry.position] }).catch((error: unknown) => process.stderr.write(`ack failed: ${String(error)}\n`));
        }
      });
      call.on('error', (error: ServiceError) => (error.code === 1 /* CANCELLED: we stopped it */ ? resolve() : reject(error)));
      call.on('end', resolve);
    });
  } finally {
    process.removeListener('SIGINT', stop);
  }
}

function startOf<K extends 'start' | 'to'>(from: string | undefined, fromNow: boolean | undefined, key: K) {
  if (from !== undefined && fromNow === true) throw new UsageError('give --from or --from-now, not both');
  if (from !== undefined) {
    if (!/^\d{1,19}$/.test(from)) throw new UsageError('--from must be a feed position (0, 1, 2, ...)');
    return { [key]: { $case: 'afterPosition' as const, value: BigInt(from) } } as Record<K, { $case: 'afterPosition'; value: bigint }>;
  }
  if (fromNow === true) {
    const value = key === 'start' ? { $case: 'fromNow' as const, value: true } : { $case: 'toNow' as const, value: true };
    return { [key]: value } as Record<K, typeof value>;
  }
  return {};
}

function optionalNumber(raw: string | undefined, flag: string): number {
  if (raw === undefined) return 0;
  if (!/^\d{1,9}$/.test(raw)) throw new UsageError(`${flag} must be a number`);
  return Number(raw);
}

function describeGroup(group: ConsumerGroup): string {
  const s = group.settings;
  const selector = group.selector;
  const what = `${selector?.stream ?? '?'}${selector?.excludeDescendants === true ? '' : ' (and below)'}${selector && selector.eventTypes.length > 0 ? ` types ${selector.eventTypes.join(',')}` : ''}`;
  return `${group.name}: ${what}, ${s?.partitions} partitions, ack wait ${s?.ackWaitMs} ms, max deliveries ${s?.maxDeliveries}, max in flight ${s?.maxInFlight}`;
}

function groupJson(group: ConsumerGroup): unknown {
  return toJson(group);
}

/** JSON with bigints as strings and dates as ISO text. */
function toJson(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))) as unknown;
}

function write(json: boolean, data: unknown, text: string): void {
  process.stdout.write(json ? `${JSON.stringify(data)}\n` : `${text}\n`);
}
