import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'scripts/**/*.test.ts'],
    // The reliability suite has its own command (vitest.reliability.config.ts).
    exclude: ['**/node_modules/**', 'src/server/reliability/**'],
    // ORT and sharp already use both cores; parallel files would only thrash.
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 300_000,
  },
});
