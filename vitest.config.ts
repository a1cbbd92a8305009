import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'scripts/**/*.test.ts'],
    // The reliability suite has its own command (vitest.reliability.config.ts).
    exclude: ['**/node_modules/**', 'src/server/reliability/**'],
    // ORT and sharp already use both cores; parallel files would only thrash.
    fileParallelism: false,
    // One worker process for every file instead of a fresh one per file: each file's imports (ONNX Runtime,
    // sharp, Fastify, TypeBox) were loaded anew, seconds a file on a busy machine. Files must leave no state
    // behind (tests close what they open; vi.mock is still reset between files).
    isolate: false,
    testTimeout: 120_000,
    // expect.poll waits for a page or a server to show a result; its 1 s default was too short for a browser
    // round trip on a loaded CI machine (a sign-off that renders its PDF in a thread starting up).
    expect: { poll: { timeout: 10_000 } },
    hookTimeout: 300_000,
  },
});
