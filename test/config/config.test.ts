import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/config';
import { runCli } from '../helpers/cli';
import { tempDir } from '../helpers/server';

/** The problems a configuration is refused with. */
function problemsOf(argv: string[], env: NodeJS.ProcessEnv = {}): string[] {
  try {
    loadConfig(argv, env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  assert.fail('the configuration was accepted');
}

describe('configuration', () => {
  let dir: string;
  before(() => {
    dir = tempDir('eh-config-');
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('takes flags over environment variables over the config file over defaults', () => {
    const file = path.join(dir, 'eventhorizon.yaml');
    fs.writeFileSync(file, 'listen: 127.0.0.1:7000\nlog-level: debug\nsubscriber-buffer: 50\nmetrics-listen: "off"\n');
    const config = loadConfig(['--config', file, '--listen', '127.0.0.1:9000'], {
      EH_LOG_LEVEL: 'warn',
    });
    assert.equal(config.listen, '127.0.0.1:9000', 'flag over file');
    assert.equal(config.logLevel, 'warn', 'env over file');
    assert.equal(config.subscriberBufferEntries, 50, 'file over default');
    assert.equal(config.metricsListen, 'off');
    assert.equal(config.heartbeatIntervalMs, 15_000, 'default');
  });

  it('reads JSON files named by EH_CONFIG', () => {
    const file = path.join(dir, 'eventhorizon.json');
    fs.writeFileSync(file, JSON.stringify({ auth: 'required', 'max-event-bytes': 1000 }));
    const config = loadConfig([], { EH_CONFIG: file });
    assert.equal(config.auth, 'required');
    assert.equal(config.limits.maxEventBytes, 1000);
  });

  it('reports every problem at once, one line each, naming its source', () => {
    const file = path.join(dir, 'bad.yaml');
    fs.writeFileSync(file, 'colour: blue\nsubscriber-buffer: -1\n');
    const problems = problemsOf(['--config', file, '--auth', 'maybe'], { EH_METRICS_LISTEN: 'nowhere', EH_TLS_CERT: '/no/such.pem' });
    assert.deepEqual(problems, [
      `config file ${file}: unknown setting "colour" (settings are named like the flags, e.g. data-dir)`,
      `${file}: subscriber-buffer="-1": must be a positive integer`,
      'EH_METRICS_LISTEN="nowhere": must be host:port or "off"',
      '--auth="maybe": must be "required" or "off"',
      'EH_TLS_CERT="/no/such.pem": must be a readable file',
    ]);
  });

  it('needs the TLS certificate and key together', () => {
    const pem = path.join(dir, 'x.pem');
    fs.writeFileSync(pem, '');
    assert.deepEqual(problemsOf(['--tls-cert', pem]), ['EH_TLS_CERT and EH_TLS_KEY (--tls-cert, --tls-key) must be set together']);
  });

  it('takes consumer-group lease settings, the renewal at most a third of the lease', () => {
    const config = loadConfig(['--group-lease', '3s'], { EH_GROUP_LEASE_RENEW: '1s' });
    assert.deepEqual([config.groupLeaseMs, config.groupLeaseRenewMs], [3000, 1000]);
    assert.deepEqual(problemsOf(['--group-lease', '6s']), ['EH_GROUP_LEASE_RENEW (--group-lease-renew) must be at most a third of EH_GROUP_LEASE (--group-lease)']);
    assert.match(problemsOf(['--group-lease', 'soon'])[0] ?? '', /group-lease.*must be a duration/);
  });

  it('refuses a non-loopback address without auth, unless told it is fine', () => {
    const [problem] = problemsOf(['--listen', '0.0.0.0:50051']);
    assert.match(problem ?? '', /refusing to serve a non-loopback address without authentication/);
    assert.equal(loadConfig(['--listen', '0.0.0.0:50051', '--auth', 'required'], {}).auth, 'required');
    assert.equal(loadConfig(['--listen', '0.0.0.0:50051'], { EH_ALLOW_INSECURE: 'true' }).allowInsecure, true);
    assert.equal(loadConfig(['--listen', 'localhost:1'], {}).listen, 'localhost:1');
    assert.equal(loadConfig(['--listen', '[::1]:1'], {}).listen, '[::1]:1');
  });

  it('serve --print-config shows the effective values and their sources', async () => {
    const keyring = '{"active":"k1","keys":{"k1":"c2VjcmV0"}}';
    const result = await runCli(['serve', '--print-config', '--log-level', 'debug'], { EH_AUTH: 'required', EH_KEYRING: keyring });
    assert.equal(result.code, 0, result.stderr);
    const shown = JSON.parse(result.stdout) as Record<string, { value: unknown; source: string }>;
    assert.deepEqual(shown['log-level'], { value: 'debug', source: 'flag' });
    assert.deepEqual(shown.auth, { value: 'required', source: 'env' });
    assert.deepEqual(shown.listen, { value: '127.0.0.1:50051', source: 'default' });
    assert.deepEqual(shown['heartbeat-interval'], { value: '15000ms', source: 'default' });
    assert.deepEqual(shown.keyring, { value: '***', source: 'env' }, 'secrets are masked');
    assert.ok(!result.stdout.includes('c2VjcmV0'));
  });

  it('serve exits 2 with the problems on a bad configuration', async () => {
    const result = await runCli(['serve', '--listen', '0.0.0.0:0']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /non-loopback address without authentication/);
  });
});
