/**
 * The HTTP section of `npm run bench`: predict requests on loopback against the server as `npm start` runs it,
 * and how long a health check waits while a large upload is analysed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ms, q } from './bench-stats.js';

/**
 * The server as `npm start` runs it (network in a worker thread) against the network on the event loop's
 * own thread, alternating so both see the same machine.
 */
export async function httpBench(buffers: Buffer[], log: (line?: string) => void): Promise<void> {
  log(
    '## HTTP predict on loopback (16 concurrent clients, one image per request, heat-map data stored, PNG drawn on first view)',
  );
  log();
  const runs = await alternated((worker) => httpLoad(buffers, worker));
  const show = (r: { rate: number; p50: number; p99: number }[]) =>
    r.map((x) => `${x.rate.toFixed(0)} req/s, p50 ${ms(x.p50)}, p99 ${ms(x.p99)}`).join('; ');
  log(
    `- as served (network in a worker thread), 2 runs of 480 requests: **${show(runs.worker)}** (targets ≥ 80 req/s, p99 ≤ 200 ms)`,
  );
  log(`- network on the event loop's thread, alternated with those runs: ${show(runs.inline)}`);
  const mean = (r: { rate: number }[]) => r.reduce((a, x) => a + x.rate, 0) / r.length;
  log(
    `- requests/s, worker thread ÷ event-loop thread: ${(mean(runs.worker) / mean(runs.inline)).toFixed(2)}×`,
  );
  const waits = await alternated((worker) => healthWhileBusy(buffers, worker));
  const showWaits = (w: number[][]) =>
    w.map((x) => `p50 ${ms(q(x, 0.5))}, max ${ms(Math.max(...x))} (${x.length} checks)`).join('; ');
  log(
    '- `GET /health` answered while one 50-image upload is analysed (what another user of the app waits): ' +
      `worker thread ${showWaits(waits.worker)}; event-loop thread ${showWaits(waits.inline)}`,
  );
  log();
}

/** Two rounds of `f` with the network in a worker thread and on the event loop's thread, alternated. */
async function alternated<T>(f: (worker: boolean) => Promise<T>): Promise<{ worker: T[]; inline: T[] }> {
  const out = { worker: [] as T[], inline: [] as T[] };
  for (let round = 0; round < 2; round++) {
    out.worker.push(await f(true));
    out.inline.push(await f(false));
  }
  return out;
}

async function startServer(worker: boolean) {
  const { buildApp } = await import('../src/server/app.js');
  const { pipeline } = await import('../src/pipeline.js');
  const dataDir = mkdtempSync(join(tmpdir(), 'hv-bench-http-'));
  const vision = await pipeline({ worker });
  // Throughput, not the limits: a loopback bench with accounts and rate limits off (both have their own tests).
  const app = await buildApp({ auth: 'off', rateLimits: false, vision, dataDir, logger: false });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    base: `http://127.0.0.1:${port}/api/v1`,
    stop: async () => {
      await app.close();
      await vision.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

function imagesForm(buffers: Buffer[], from: number, count: number): FormData {
  const form = new FormData();
  for (let i = from; i < from + count; i++) {
    form.append(
      'images',
      new Blob([new Uint8Array(buffers[i % buffers.length])], { type: 'image/jpeg' }),
      `img${i}.jpg`,
    );
  }
  return form;
}

/** Latencies of back-to-back health checks while the server analyses one 50-image upload. */
async function healthWhileBusy(buffers: Buffer[], worker: boolean): Promise<number[]> {
  const server = await startServer(worker);
  const warm = await fetch(`${server.base}/predict`, { method: 'POST', body: imagesForm(buffers, 0, 4) });
  await warm.arrayBuffer();
  let busy = true;
  const waits: number[] = [];
  const upload = fetch(`${server.base}/predict`, { method: 'POST', body: imagesForm(buffers, 0, 50) })
    .then((r) => r.arrayBuffer())
    .finally(() => (busy = false));
  while (busy) {
    const t0 = performance.now();
    await (await fetch(`${server.base}/health`)).arrayBuffer();
    waits.push(performance.now() - t0);
  }
  await upload;
  await server.stop();
  return waits;
}

async function httpLoad(
  buffers: Buffer[],
  worker: boolean,
): Promise<{ rate: number; p50: number; p99: number }> {
  const server = await startServer(worker);
  const url = `${server.base}/predict`;
  const post = async (i: number) => {
    const form = imagesForm(buffers, i, 1);
    const t0 = performance.now();
    const r = await fetch(url, { method: 'POST', body: form });
    await r.arrayBuffer();
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    return performance.now() - t0;
  };
  for (let i = 0; i < 16; i++) await post(i);
  const total = 480;
  const clients = 16;
  const latencies: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < total) latencies.push(await post(next++));
    }),
  );
  const sec = (performance.now() - t0) / 1000;
  await server.stop();
  return { rate: total / sec, p50: q(latencies, 0.5), p99: q(latencies, 0.99) };
}
