import assert from 'node:assert/strict';
import { ancestorsOf, isSystemPath, parentOf, streamPathProblem } from '../../src/model/stream-path';

describe('stream paths', () => {
  it('accepts the root and well-formed paths', () => {
    for (const ok of ['/', '/a', '/tenants/acme/orders-42', '/A.b_c~d-e', `/${'x'.repeat(128)}`, '/$/auth',
      '/' + Array.from({ length: 16 }, () => 'a').join('/')]) {
      assert.equal(streamPathProblem(ok), undefined, ok);
    }
  });

  it('names the rule each bad path breaks', () => {
    const cases: Array<[string, RegExp]> = [
      ['', /required/],
      ['a/b', /absolute/],
      ['/a/', /end with/],
      ['/a//b', /empty segments/],
      ['/a/../b', /"\." or "\.\."/],
      ['/a b', /\[A-Za-z0-9._~-\]/],
      ['/a/$', /\[A-Za-z0-9._~-\]/],
      [`/${'x'.repeat(129)}`, /1\.\.128/],
      ['/' + Array.from({ length: 17 }, () => 'a').join('/'), /16 segments/],
      ['/' + Array.from({ length: 9 }, () => 'y'.repeat(120)).join('/'), /1024 bytes/],
    ];
    for (const [path, rule] of cases) assert.match(streamPathProblem(path) ?? 'valid', rule, path);
  });

  it('knows parents, ancestors and system paths', () => {
    assert.equal(parentOf('/a'), '/');
    assert.equal(parentOf('/a/b/c'), '/a/b');
    assert.deepEqual(ancestorsOf('/a/b/c'), ['/', '/a', '/a/b']);
    assert.deepEqual(ancestorsOf('/'), []);
    assert.equal(isSystemPath('/$'), true);
    assert.equal(isSystemPath('/$/keys'), true);
    assert.equal(isSystemPath('/a$'), false);
  });
});
