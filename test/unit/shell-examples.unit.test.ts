import assert from 'node:assert/strict';
import { shellExamples } from '../helpers/shell-examples';

describe('shellExamples (README examples as a shell splits them)', () => {
  it('joins continued lines and quotes spanning lines, and skips comments and other commands', () => {
    const markdown = [
      'Text with `grpcurl list` inline is not an example.',
      '```sh',
      '# What is there',
      "grpcurl -plaintext -d '{\"a\":1,",
      "  \"b\":[2]}' \\",
      '  127.0.0.1:50051 pkg.Service/Method',
      'npx buf curl --list-services http://h  # trailing comment',
      'echo not this one',
      '```',
      '```json',
      'grpcurl not-a-shell-block',
      '```',
    ].join('\n');
    assert.deepEqual(shellExamples(markdown, 'grpcurl'), [
      ['-plaintext', '-d', '{"a":1,\n  "b":[2]}', '127.0.0.1:50051', 'pkg.Service/Method'],
    ]);
    assert.deepEqual(shellExamples(markdown, 'npx buf curl'), [['--list-services', 'http://h']]);
  });

  it('refuses an example that relies on shell syntax it does not interpret', () => {
    const markdown = '```sh\ngrpcurl -H "authorization: Bearer $KEY" 127.0.0.1:50051 list\nnpx x > file\n```\n';
    assert.throws(() => shellExamples(markdown, 'grpcurl'), /unsupported shell syntax "/);
    // Commands that are not asked for may use any syntax.
    assert.deepEqual(shellExamples(markdown, 'ls'), []);
  });
});
