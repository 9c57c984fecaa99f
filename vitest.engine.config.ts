// The Docker engine suite (test/engine): builds the image and runs it and the Compose stack on a private
// dockerd. Its own run (`npm run test:engine`, a step of .ci/run after `npm test`) so that the image
// build's CPU does not share the machine with the suite's timing-sensitive system tests.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/engine/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 300_000,
    hookTimeout: 900_000,
  },
});
