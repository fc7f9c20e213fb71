import { credentials } from '@grpc/grpc-js';
import { EventHorizonClient } from '../../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';

/**
 * A client process for subscriber-fault tests: `node subscriber-process.js ADDRESS STREAM COUNT`
 * opens COUNT subscriptions to STREAM, prints "ready" once every one has caught up, then reads on
 * until it is killed or stopped. The test kills it (a client that vanishes) or stops it with
 * SIGSTOP (a client that neither reads nor answers keepalive pings). A line "cancel" on its
 * standard input cancels every subscription; it then prints "cancelled" and opens them again on
 * the next "open". A line "status" prints how many of the current ones have caught up.
 */
function main(): void {
  const [address, stream, countText] = process.argv.slice(2);
  if (!address || !stream || !countText) throw new Error('usage: subscriber-process ADDRESS STREAM COUNT');
  const count = Number(countText);
  // Each client its own connection options: no keepalive of its own, so the server's is tested.
  const client = new EventHorizonClient(address, credentials.createInsecure());
  let calls: Array<{ cancel(): void }> = [];
  let caughtUp = 0;
  const open = () => {
    caughtUp = 0;
    calls = Array.from({ length: count }, () => {
      const call = client.subscribe({ stream });
      call.on('data', (message: { message?: { $case: string } }) => {
        if (message.message?.$case === 'caughtUp' && ++caughtUp === count) process.stdout.write('ready\n');
      });
      call.on('error', () => undefined);
      return call;
    });
  };
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (line: string) => {
    if (line.includes('cancel')) {
      for (const call of calls) call.cancel();
      process.stdout.write('cancelled\n');
    } else if (line.includes('open')) open();
    else if (line.includes('status')) process.stdout.write(`status: ${caughtUp} of ${count} caught up\n`);
  });
  open();
}

main();
