import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      './web/vitest.config.ts',
      {
        test: {
          name: 'server',
          include: ['{db,sfu,signaling,testkit,bench}/**/*.test.ts', 'web/e2e/**/*.test.ts'],
          globalSetup: ['./db/vitest-global-setup.ts'],
          setupFiles: ['./testkit/leak-guard.ts'],
          testTimeout: 30_000,
          hookTimeout: 60_000,
          pool: 'forks',
        },
      },
    ],
  },
});
