// ESLint 9 flat config: typescript-eslint with type information. The project service gives each
// file the tsconfig that tsc compiles it with (the root one, or clients/ts's for the client).
// `npm run lint` runs it; CI runs it right after `npm ci`.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'clients/ts/src/gen/**', // ts-proto output: regenerated from proto/, never edited by hand
      '**/dist/**',
      '**/node_modules/**',
      'clients/python/**',
      'clients/go/**',
      '.cache/**',
      'eslint.config.mjs',
    ],
  },
  {
    files: ['src/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts', 'examples/**/*.ts', 'clients/ts/src/**/*.ts', 'web/src/**/*.ts'],
    extends: [...tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // The rules. The first two are in recommendedTypeChecked already; named here so
      // that they stay errors whatever the preset does.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unnecessary-type-assertion': 'error',
      // Conditions on values whose falsy cases are real values. Stream versions, positions and
      // counts are bigints and numbers where 0 is valid: a number (nullable or not) in a
      // condition must be compared explicitly. A nullable boolean is not a hazard (undefined and
      // false both mean "off": signal?.aborted, shredded?, --help), nor a nullable object. A
      // string that may be absent is allowed too: everywhere in this code base (CLI flags,
      // environment settings, problem messages, file names) an empty string and no string mean
      // the same; all ~50 such conditions were read when this was set up. Nullable enums and
      // `any` in conditions stay errors.
      '@typescript-eslint/strict-boolean-expressions': [
        'error',
        {
          allowString: true,
          allowNumber: false,
          allowNullableObject: true,
          allowNullableBoolean: true,
          allowNullableString: true,
          allowNullableNumber: false,
          allowNullableEnum: false,
          allowAny: false,
        },
      ],
      // Type-only imports are erased, so they cannot create load-order cycles or load modules
      // for their types alone. `typeof import('...')` stays allowed: src/cli/main.ts types its
      // lazy requires with it.
      '@typescript-eslint/consistent-type-imports': ['error', { disallowTypeAnnotations: false }],
      // Off: many async functions do not await because they implement a Promise-returning
      // interface (stores, handlers); making them plain functions would turn their throws into
      // synchronous exceptions, which callers do not expect.
      '@typescript-eslint/require-await': 'off',
      // Off: gRPC status codes arrive as plain numbers (raw HTTP/2 trailers, grpc-js's own
      // `code: number` fields) and are compared with the `status` enum by design; the payload
      // codec switches on a header nibble against its Compression enum the same way.
      '@typescript-eslint/no-unsafe-enum-comparison': 'off',
      // Rejections must be Errors, but values typed unknown/any (a caught error, an AbortSignal's
      // reason, a stored failure) are passed on as they are: they came from a throw.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingAny: true, allowThrowingUnknown: true }],
      // tsc's noUnusedLocals/Parameters checks these; this only adds the `_`-prefixed exception
      // for rest-destructuring that drops a property.
      '@typescript-eslint/no-unused-vars': ['error', { ignoreRestSiblings: true, argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // Both pass the generated client's methods to a helper that calls them with
    // `method.call(client, ...)`, so the unbound references are bound where they are used.
    files: ['clients/ts/src/client.ts', 'src/cli/promise-api.ts'],
    rules: { '@typescript-eslint/unbound-method': 'off' },
  },
  {
    // The CLI loads each command with a plain CommonJS require when it is used, so that a client
    // command does not pay for loading the server (see the comment on COMMANDS).
    files: ['src/cli/main.ts'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // What the default configuration does not use loads when first used, with a plain CommonJS
    // require: the DynamoDB store (the AWS SDK), yaml (a YAML config file), zstd-codec (the
    // fallback of the native zstd). An idle embedded server is smaller without them.
    files: ['src/store/factory.ts', 'src/config/config.ts', 'src/codec/compression.ts'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
