import { defineConfig } from 'vitest/config';

/** `npm run test:host`: a real systemd booting a Debian root, one test file at a time (the fort's ports are fixed). */
export default defineConfig({
  test: {
    include: ['test/host/**/*.test.ts'],
    globalSetup: ['test/host/global-setup.ts'],
    testTimeout: 180_000,
    hookTimeout: 300_000,
    pool: 'forks',
    maxWorkers: 1,
    fileParallelism: false,
  },
});
