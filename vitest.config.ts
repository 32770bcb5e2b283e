import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // One real stack (PostgreSQL + Temporal dev server) for the whole suite, started once.
    globalSetup: ['tests/support/global-stack.ts'],
    setupFiles: ['tests/support/env.ts'],
    // 2-core machines: files run one after another; each may start workers and servers of its own.
    fileParallelism: false,
    pool: 'forks',
    testTimeout: 180_000,
    hookTimeout: 180_000,
    teardownTimeout: 60_000,
  },
});
