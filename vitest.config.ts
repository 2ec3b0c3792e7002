import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // test/host/ boots a real systemd: npm run test:host (root).
    exclude: ['dist/**', 'node_modules/**', 'test/host/**'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Integration tests start real processes; two cores, so keep parallelism modest.
    maxWorkers: 2,
  },
});
