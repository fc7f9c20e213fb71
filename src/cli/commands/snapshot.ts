import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { CONNECTION_HELP, CONNECTION_OPTIONS, connect } from './connection';
import { eventToJson, isJson } from './render';
import { version } from './stream';
import { EXIT, UsageError } from './exit-codes';

/** Help of `eventhorizon snapshot`. */
export const SNAPSHOT_USAGE = `Usage: eventhorizon snapshot <command> PATH PERSPECTIVE [options]

  snapshot get PATH PERSPECTIVE                         print the snapshot (JSON pretty-printed)
  snapshot put PATH PERSPECTIVE --version V [DATA|-] [--content-type T]
                                                        store it (kept only when newer); - reads stdin
  snapshot rm PATH PERSPECTIVE                          delete it

${CONNECTION_HELP}
`;

/** `eventhorizon snapshot ...` */
export async function snapshotCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { ...CONNECTION_OPTIONS, version: { type: 'string' }, 'content-type': { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  const [command, path, perspective, dataArg] = positionals;
  if (values.help || command === undefined) {
    process.stdout.write(SNAPSHOT_USAGE);
    return;
  }
  if (path === undefined || perspective === undefined) throw new UsageError(`snapshot ${command} needs PATH and PERSPECTIVE`);
  const json = values.json === true;
  const api = connect(values);
  const out = (value: unknown) =>
    process.stdout.write(typeof value === 'string' ? `${value}\n` : `${JSON.stringify(value, null, 2)}\n`);
  try {
    switch (command) {
      case 'get': {
        const { snapshot } = await api.getSnapshot({ stream: path, perspective });
        if (!snapshot) {
          process.stderr.write(`no snapshot ${perspective} of ${path}\n`);
          process.exitCode = EXIT.notFound;
          return;
        }
        // Reuse the event rendering for the data: JSON inline, other bytes as base64.
        const { data, dataBase64 } = eventToJson({ ...snapshot, id: '', type: '', metadata: {}, occurredAt: undefined });
        const shown = {
          perspective: snapshot.perspective,
          version: snapshot.version.toString(),
          contentType: snapshot.contentType,
          storedAt: snapshot.storedAt?.toISOString(),
          ...(dataBase64 === undefined ? { data } : { dataBase64 }),
        };
        if (json) out(shown);
        else {
          out(`${shown.perspective} at version ${shown.version}, stored ${shown.storedAt} (${shown.contentType})`);
          out(isJson(snapshot.contentType) && dataBase64 === undefined ? JSON.stringify(data, null, 2) : `<${snapshot.data.byteLength} bytes>`);
        }
        return;
      }
      case 'put': {
        if (values.version === undefined) throw new UsageError('snapshot put needs --version V');
        const data = dataArg === '-' ? fs.readFileSync(0) : Buffer.from(dataArg ?? '{}');
        const result = await api.putSnapshot({
          stream: path,
          perspective,
          version: version(values.version, '--version'),
          data,
          contentType: values['content-type'] ?? '',
        });
        const stored = result.storedVersion.toString();
        out(json ? { stored: result.stored, storedVersion: stored } : result.stored ? `stored at version ${stored}` : `kept the newer snapshot at version ${stored}`);
        return;
      }
      case 'rm': {
        const { deleted } = await api.deleteSnapshot({ stream: path, perspective });
        out(json ? { deleted } : deleted ? 'deleted' : 'there was no such snapshot');
        return;
      }
      default:
        throw new UsageError(`unknown snapshot command "${command}"`);
    }
  } finally {
    api.close();
  }
}
