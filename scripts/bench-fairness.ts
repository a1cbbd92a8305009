/**
 * Fairness under abuse (issue 15): another client's single-image predict, p50 and p99, alone and while
 * abusive clients run against the same server process — 1-bit 7000² BMPs, 7000² PNGs within the pixel
 * limit, CSV exports of many cases, and four clients sending 50 images with test-time augmentation. The
 * target: the victim's p99 under each mix at most 2× its unloaded p99. Prints a Markdown section for
 * BENCHMARKS.md; run it when `uptime` shows a quiet machine.
 *
 *   [MIXES=bmp,png,csv,tta] npm run bench:fairness -- [victimRequests=300] [csvCases=5000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { oneBitBmp } from '../src/testing/bmp.js';
import { discJpeg } from '../src/testing/cells.js';
import { multipartBody } from '../src/testing/bad-inputs.js';
import { killHard, rawRequest, startServerProcess } from '../src/testing/server-process.js';
import { SqliteCaseStore } from '../src/server/store/index.js';

const victimRequests = Number(process.argv[2] ?? 300);
const csvCases = Number(process.argv[3] ?? 5000);
const CONTENT_TYPE = 'multipart/form-data; boundary=----hvReliability7MA4YWxkTrZu0gW';

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** Fills a data folder with `n` cases (one image, its bytes stored once) for the CSV exports to read. */
async function seedCases(dataDir: string, n: number, image: Buffer): Promise<void> {
  const store = SqliteCaseStore.open(dataDir);
  const prediction = {
    label: 'neutrophil',
    confidence: 0.9,
    probabilities: { neutrophil: 0.9, lymphocyte: 0.1 },
    needsReview: false,
    reviewReasons: [],
    cells: [],
  };
  for (let i = 0; i < n; i += 500)
    await Promise.all(
      Array.from({ length: Math.min(500, n - i) }, (_, j) =>
        store.add({
          file: `seed-${i + j}.jpg`,
          image,
          imageType: 'image/jpeg',
          width: 360,
          height: 360,
          model: { name: 'seed', version: '0', tta: false },
          prediction,
        }),
      ),
    );
  await store.close();
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'hv-fair-'));
  const photo = await discJpeg(2);
  await seedCases(dataDir, csvCases, await discJpeg(5));
  const server = startServerProcess(dataDir, { RATE_LIMIT: '0' });
  const port = await server.port();
  const post = (files: Buffer[], query = '') =>
    rawRequest(
      port,
      {
        method: 'POST',
        path: `/api/v1/predict${query}`,
        headers: { 'content-type': CONTENT_TYPE },
        body: multipartBody(files.map((bytes, i) => ({ filename: `f${i}`, bytes }))),
      },
      600_000,
    );

  /** The victim: one photo at a time; its latencies (ms). */
  const victim = async () => {
    const times: number[] = [];
    for (let i = 0; i < victimRequests; i++) {
      const t = performance.now();
      const r = await post([photo]);
      if (r.status !== 200) throw new Error(`victim got ${r.status}: ${r.body.toString().slice(0, 200)}`);
      times.push(performance.now() - t);
    }
    return times;
  };

  const bmp = oneBitBmp(7000, 7000);
  const png = await sharp({ create: { width: 7000, height: 7000, channels: 3, background: '#dcd' } })
    .png({ compressionLevel: 9 })
    .toBuffer();
  const fifty = await Promise.all(Array.from({ length: 50 }, (_, i) => discJpeg(i)));
  const all: { key: string; name: string; clients: number; send: () => Promise<unknown> }[] = [
    {
      key: 'bmp',
      name: 'two clients sending a 1-bit 7000² BMP, again and again',
      clients: 2,
      send: () => post([bmp]),
    },
    {
      key: 'png',
      name: 'eight clients sending a 7000² PNG (49 MP), again and again',
      clients: 8,
      send: () => post([png]),
    },
    {
      key: 'csv',
      name: `two clients exporting CSV of ${csvCases} cases, again and again`,
      clients: 2,
      send: () => rawRequest(port, { path: '/api/v1/cases.csv' }, 600_000),
    },
    {
      key: 'tta',
      name: 'four clients sending 50 images with ?tta=true, again and again',
      clients: 4,
      send: () => post(fifty, '?tta=true'),
    },
  ];
  // MIXES=csv,tta: only those rows.
  const only = process.env.MIXES?.split(',');
  const mixes = all.filter((m) => !only || only.includes(m.key));

  await victim(); // warm-up
  // Alone is measured before and after the mixes: the machine drifts during a run of minutes, and a
  // baseline taken once would make every ratio depend on that one moment. The ratios divide by the p99 of
  // both runs pooled; each run's own figures are printed too.
  const before = await victim();
  const rows: string[] = [];
  const ratios: number[] = [];
  const loaded: { name: string; times: number[]; abusive: number }[] = [];
  for (const mix of mixes) {
    let running = true;
    let abusive = 0;
    const abusers = Array.from({ length: mix.clients }, async () => {
      while (running) {
        await mix.send().catch(() => undefined);
        abusive++;
      }
    });
    await new Promise((r) => setTimeout(r, 1500));
    const times = await victim();
    running = false;
    await Promise.all(abusers);
    loaded.push({ name: mix.name, times, abusive });
    console.error(
      `${mix.name}: p50 ${percentile(times, 50).toFixed(0)} ms, p99 ${percentile(times, 99).toFixed(0)} ms`,
    );
  }
  const after = await victim();
  const base99 = percentile([...before, ...after], 99);
  const alone = (label: string, times: number[]) =>
    `| ${label} | ${percentile(times, 50).toFixed(0)} ms | ${percentile(times, 99).toFixed(0)} ms | ` +
    `${(percentile(times, 99) / base99).toFixed(2)}× |`;
  rows.push(alone('alone, before the mixes', before), alone('alone, after the mixes', after));
  for (const { name, times, abusive } of loaded) {
    const p99 = percentile(times, 99);
    ratios.push(p99 / base99);
    rows.push(
      `| ${name} (${abusive} abusive requests answered) | ${percentile(times, 50).toFixed(0)} ms | ` +
        `${p99.toFixed(0)} ms | ${(p99 / base99).toFixed(2)}× |`,
    );
  }
  await killHard(server);
  rmSync(dataDir, { recursive: true, force: true });

  console.log(`## Fairness under abuse (\`npm run bench:fairness\`, ${new Date().toISOString().slice(0, 10)})

Another client sends one photo at a time (${victimRequests} requests per row) to the server process while the
abusive clients of each row run; p99 is of its own requests. Target: ≤ 2× its p99 alone (the ratio's
baseline: both alone runs pooled).
Machine: ${cpus().length} cores, load average ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' / ')} at the end (other work on a shared machine inflates every figure).

| the other clients | victim p50 | victim p99 | p99 ÷ alone |
| --- | --- | --- | --- |
${rows.join('\n')}

Worst ratio: ${Math.max(...ratios).toFixed(2)}×.`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
