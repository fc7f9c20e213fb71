import assert from 'node:assert/strict';
import { ConfigError, DEFAULT_CONFIG, loadConfig, parseDuration } from '../../src/config/config';

describe('configuration', () => {
  it('defaults to the embedded store on loopback', () => {
    const config = loadConfig([], {});
    assert.equal(config.listen, '127.0.0.1:50051');
    assert.equal(config.dataDir, './data');
    assert.equal(config.store, 'sqlite');
    assert.equal(config.heartbeatIntervalMs, 15_000);
    assert.deepEqual(config, DEFAULT_CONFIG);
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
