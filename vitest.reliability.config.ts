import { defineConfig } from 'vitest/config';

// `npm run test:reliability`: the server as a real process under bad input, kill -9, a second server, slow
// clients, a full disk and a damaged database (issue 15). Kept out of `npm test`; CI runs both.
export default defineConfig({
  test: {
    include: ['src/server/reliability/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 120_000,
  },
});
