import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The Docker engine suite runs on its own: vitest.engine.config.ts.
    exclude: ['test/engine/**', 'node_modules/**'],
    globalSetup: ['test/global-setup.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    coverage: {
      provider: 'v8',
      include: ['src/**/*.ts', 'migrations/**/*.ts'],
      reporter: ['text-summary', 'json-summary'],
    },
  },
});
