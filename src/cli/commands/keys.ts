import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { KeyringError, LocalKeyring, generateKeyring, type KeyringFile } from '../../crypto/keyring';

export const KEYS_USAGE = `Usage: eventhorizon keys generate [--id ID] [--add-to FILE]

Prints a keyring (JSON) holding a new random 256-bit key-encryption key, made active.
  --id ID        the new key's id (default: kek-<date>)
  --add-to FILE  keep the keys of an existing keyring file, so data keys they wrapped stay
                 readable; the server re-wraps them under the new active key when it starts

Store the output with restricted permissions and point EH_KEYRING_FILE at it:
  eventhorizon keys generate > keyring.json && chmod 600 keyring.json
`;

/** `eventhorizon keys ...`: returns the process exit code. */
export function keysCommand(argv: string[]): number {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || rest.includes('--help')) {
    process.stdout.write(KEYS_USAGE);
    return 0;
  }
  if (sub !== 'generate') {
    process.stderr.write(`eventhorizon keys: unknown command "${sub}"\n\n${KEYS_USAGE}`);
    return 2;
  }
  try {
    const { values } = parseArgs({ args: rest, options: { id: { type: 'string' }, 'add-to': { type: 'string' } }, strict: true });
    const id = values.id ?? `kek-${new Date().toISOString().slice(0, 10)}`;
    let previous: KeyringFile | undefined;
    if (values['add-to']) {
      LocalKeyring.fromFile(values['add-to']); // refuse to extend a broken keyring
      previous = JSON.parse(fs.readFileSync(values['add-to'], 'utf8')) as KeyringFile;
    }
    process.stdout.write(`${JSON.stringify(generateKeyring(id, previous), null, 2)}\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`eventhorizon keys: ${error instanceof KeyringError ? error.message : (error as Error).message}\n`);
    return 2;
  }
}
