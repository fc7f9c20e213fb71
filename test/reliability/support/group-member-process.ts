import { connect } from '../../../clients/ts/src';

/**
 * A member of a consumer group, for the consumer-group proof test:
 * `node group-member-process.js ADDRESS GROUP NAME` joins GROUP with the TypeScript client's
 * `consume` (concurrency 4) and prints, per handled entry, a line "S NAME STREAM VERSION TIME"
 * when its handler starts and "E NAME STREAM VERSION TIME" when it ends (before the client acks),
 * TIME in milliseconds (wall clock, fractional). Writes to a pipe are synchronous on Linux, so a
 * SIGKILL loses no line printed. SIGTERM stops it cleanly (finish, ack, leave), then it prints
 * "stopped" and exits.
 */
function main(): void {
  const [address, group, name] = process.argv.slice(2);
  if (!address || !group || !name) throw new Error('usage: group-member-process ADDRESS GROUP NAME');
  const client = connect(address, { reconnect: { initialMs: 50, maxMs: 500 } });
  const now = () => (performance.timeOrigin + performance.now()).toFixed(3);
  const consumer = client.consume(
    group,
    async (entry) => {
      process.stdout.write(`S ${name} ${entry.stream} ${entry.version} ${now()}\n`);
      // Some work, so that two members on one stream at once would be seen.
      await new Promise((resolve) => setTimeout(resolve, 2));
      process.stdout.write(`E ${name} ${entry.stream} ${entry.version} ${now()}\n`);
    },
    {
      concurrency: 4,
      memberName: name,
      onEvent: (event) => {
        if (event.kind === 'joined') process.stdout.write(`joined ${name} ${event.memberId}\n`);
      },
    },
  );
  consumer.done.catch((error: unknown) => {
    process.stderr.write(`member ${name} failed: ${String(error)}\n`);
    process.exit(1);
  });
  process.once('SIGTERM', () => {
    void consumer.stop().then(() => {
      process.stdout.write('stopped\n');
      client.close();
      process.exit(0);
    });
  });
}

main();
