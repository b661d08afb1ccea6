import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    // Set-up hooks may install an OS tool from Debian packages on a clean machine (and wait for
    // another test file's install to release the package lock).
    hookTimeout: 600_000,
    // Two cores: forks keep native addons (zstd) isolated and memory per test file bounded.
    pool: 'forks',
    maxWorkers: 2,
  },
});
