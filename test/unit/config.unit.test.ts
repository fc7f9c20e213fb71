import assert from 'node:assert/strict';
import { ConfigError, DEFAULT_CONFIG, DEVELOPMENT_CONSOLE_LISTEN, loadConfig, parseDuration } from '../../src/config/config';

describe('configuration', () => {
  it('defaults to the embedded store on loopback', () => {
    const config = loadConfig([], {});
    assert.equal(config.listen, '127.0.0.1:50051');
    assert.equal(config.dataDir, './data');
    assert.equal(config.store, 'sqlite');
    assert.equal(config.heartbeatIntervalMs, 15_000);
    // A development setup (loopback, NODE_ENV unset) gets the console on its development address.
    assert.deepEqual(config, { ...DEFAULT_CONFIG, consoleListen: DEVELOPMENT_CONSOLE_LISTEN, consoleOptional: true });
  });

  describe('web console address', () => {
    it('is 127.0.0.1:8080 in development, optional (a busy port only warns)', () => {
      const config = loadConfig([], { NODE_ENV: 'development' });
      assert.equal(config.consoleListen, '127.0.0.1:8080');
      assert.equal(config.consoleOptional, true);
    });

    it('is off by default in production, or when the gRPC API listens beyond loopback', () => {
      assert.equal(loadConfig([], { NODE_ENV: 'production' }).consoleListen, 'off');
      assert.equal(loadConfig([], { EH_LISTEN: '0.0.0.0:50051', EH_AUTH: 'required' }).consoleListen, 'off');
    });

    it('is what EH_CONSOLE_LISTEN says, and then required (a busy port fails the start)', () => {
      const config = loadConfig([], { NODE_ENV: 'production', EH_CONSOLE_LISTEN: '127.0.0.1:9000' });
      assert.equal(config.consoleListen, '127.0.0.1:9000');
      assert.equal(config.consoleOptional, false);
      assert.equal(loadConfig(['--console-listen', 'off'], {}).consoleListen, 'off');
    });

    it('refuses a malformed address, naming the variable', () => {
      assert.throws(() => loadConfig([], { EH_CONSOLE_LISTEN: 'everywhere' }), /EH_CONSOLE_LISTEN="everywhere": must be host:port or "off"/);
    });

    it('refuses a non-loopback console without auth, as the gRPC listener does', () => {
      assert.throws(() => loadConfig([], { EH_CONSOLE_LISTEN: '0.0.0.0:8080' }), /EH_CONSOLE_LISTEN=0\.0\.0\.0:8080: refusing to serve a non-loopback address without authentication/);
      assert.equal(loadConfig([], { EH_CONSOLE_LISTEN: '0.0.0.0:8080', EH_AUTH: 'required' }).consoleListen, '0.0.0.0:8080');
      assert.equal(loadConfig([], { EH_CONSOLE_LISTEN: '[::1]:8080' }).consoleListen, '[::1]:8080');
    });
  });

  it('takes EH_ variables, and flags over them', () => {
    const config = loadConfig(['--listen', '0.0.0.0:6000'], {
      EH_LISTEN: '127.0.0.1:7000',
      EH_ALLOW_INSECURE: 'true', // 0.0.0.0 without auth needs the explicit opt-in
      EH_DATA_DIR: '/var/lib/eh',
      EH_HEARTBEAT_INTERVAL: '500ms',
      EH_MAX_EVENTS_PER_ENTRY: '10',
    });
    assert.equal(config.listen, '0.0.0.0:6000');
    assert.equal(config.dataDir, '/var/lib/eh');
    assert.equal(config.heartbeatIntervalMs, 500);
    assert.equal(config.limits.maxEventsPerEntry, 10);
    assert.equal(DEFAULT_CONFIG.limits.maxEventsPerEntry, 1000, 'defaults untouched');
  });

  it('reports every problem at once, naming its source', () => {
    try {
      loadConfig(['--max-event-bytes=-5'], { EH_LISTEN: 'nope', EH_STORE: 'postgres' });
      assert.fail('expected a ConfigError');
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      assert.deepEqual(error.problems.length, 3);
      assert.match(error.message, /EH_LISTEN="nope": must be host:port/);
      assert.match(error.message, /EH_STORE="postgres"/);
      assert.match(error.message, /--max-event-bytes="-5": must be a positive integer/);
    }
  });

  it('refuses unknown flags', () => {
    assert.throws(() => loadConfig(['--lisen', 'x'], {}), ConfigError);
  });

  it('parses durations', () => {
    assert.equal(parseDuration('15s'), 15_000);
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('2m'), 120_000);
    assert.equal(parseDuration('3'), 3000);
    assert.equal(parseDuration('soon'), undefined);
  });
});
