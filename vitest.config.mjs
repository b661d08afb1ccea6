import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Two cores: forks keep native addons (zstd) isolated and memory per test file bounded.
    pool: 'forks',
    maxWorkers: 2,
  },
});
