// Type-aware lint: floating promises are errors, and Math.random is banned (randomness comes from
// node:crypto only). The architecture's layers are enforced here too (docs/architecture.md): each folder of
// src/ may import only the layers below it, the environment is read in one place, and application errors
// are built by the named constructors of lib/errors.ts.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

// Layers from the bottom up; a folder may import its own layer and the ones before it, never one after.
// lib < config < observability < adapters < modules < plugins < app.ts < cli
const LAYERS = {
  lib: ['config', 'observability', 'adapters', 'modules', 'plugins', 'app', 'cli'],
  config: ['observability', 'adapters', 'modules', 'plugins', 'app', 'cli'],
  observability: ['adapters', 'modules', 'plugins', 'app', 'cli'],
  adapters: ['modules', 'plugins', 'app', 'cli'],
  modules: ['plugins', 'app', 'cli'],
  plugins: ['app', 'cli'],
};
const upward = (name) =>
  name === 'app'
    ? {
        group: ['**/app.js', '**/app.ts'],
        message: 'app.ts composes the layers; nothing below it imports it.',
      }
    : {
        group: [`../${name}/*`, `../../${name}/*`, `../../../${name}/*`, `**/src/${name}/*`],
        message: `${name}/ is a higher layer: imports point down only (docs/architecture.md).`,
      };
const layerRules = Object.entries(LAYERS).map(([layer, above]) => ({
  files: [`src/${layer}/**/*.ts`],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns:
          layer === 'lib'
            ? [{ group: ['../*', '../**'], message: 'lib/ imports nothing from the rest of src/.' }]
            : above.map(upward),
      },
    ],
  },
}));

export default tseslint.config(
  {
    ignores: [
      'dist/',
      'coverage/',
      'data/',
      'bench/results/',
      '.ci/node24/',
      'clients/typescript/schema.d.ts',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: globals.node,
      parserOptions: {
        projectService: { allowDefaultProject: ['scripts/*.mjs', 'test/helpers/*.mjs'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      // Fastify's idiom: async plugins and handlers return values or promises; an await is not required.
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-restricted-properties': [
        'error',
        {
          object: 'Math',
          property: 'random',
          message: 'Use node:crypto (randomInt, randomBytes): Math.random is not cryptographically secure.',
        },
      ],
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/config/load.ts', 'src/cli/main.ts'],
    rules: {
      'no-restricted-properties': [
        'error',
        {
          object: 'Math',
          property: 'random',
          message: 'Use node:crypto (randomInt, randomBytes): Math.random is not cryptographically secure.',
        },
        {
          object: 'process',
          property: 'env',
          message: 'Settings are read once, by config/load.ts: take them from Config.',
        },
      ],
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/lib/errors.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: "NewExpression[callee.name='AppError']",
          message: 'Add a named constructor to lib/errors.ts (the one registry of application errors).',
        },
      ],
    },
  },
  ...layerRules,
  {
    files: ['src/app.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['./cli/*'], message: 'Nothing imports cli/: it is the top.' }] },
      ],
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
);
