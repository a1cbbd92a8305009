/**
 * Times a 200-cell specimen through the server (fake model, so only the specimen code is timed): its page data
 * (GET /specimens/:id), the 200 gallery crops cold (first request: decode + crop + PNG) and warm (cached), and
 * the draft report PDF with its crops. The targets: gallery ≤ 1 s, report ≤ 2 s.
 *
 *   npx tsx scripts/bench-specimen.ts [runs=5]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../src/server/app.js';
import { fakeVision, multipart, noisyJpeg } from '../src/testing/server.js';
import type { SpecimenDetailJson } from '../src/api/index.js';

const runs = Number(process.argv[2] ?? 5);
const dir = mkdtempSync(join(tmpdir(), 'hv-bench-specimen-'));
const app = await buildApp({
  auth: 'off',
  rateLimits: false,
  vision: fakeVision(),
  dataDir: dir,
  webDir: join(dir, 'no-web'),
});
try {
  await app.inject({ method: 'POST', url: '/api/v1/specimens', payload: { id: 'BENCH', targetCount: 200 } });
  // 100 fields of 320×240, two cells each in the fake model.
  for (let b = 0; b < 2; b++) {
    const files = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => ({
        name: `f${b}-${i}.jpg`,
        bytes: await noisyJpeg(320, 240),
      })),
    );
    await app.inject({ method: 'POST', url: '/api/v1/predict?specimen=BENCH', ...(await multipart(files)) });
  }
  const ms = async (f: () => Promise<unknown>) => {
    const t = performance.now();
    await f();
    return performance.now() - t;
  };
  const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  let detail!: SpecimenDetailJson;
  const page: number[] = [];
  for (let i = 0; i < runs; i++)
    page.push(await ms(async () => (detail = (await app.inject('/api/v1/specimens/BENCH')).json())));
  const crops = async () => {
    for (const c of detail.cells) await app.inject(c.cropUrl);
  };
  const cold = await ms(crops);
  const warm: number[] = [];
  for (let i = 0; i < runs; i++) warm.push(await ms(crops));
  const report: number[] = [];
  for (let i = 0; i < runs; i++)
    report.push(await ms(() => app.inject('/api/v1/specimens/BENCH/report.pdf')));
  console.log(`cells: ${detail.cells.length}, flagged/corrected in report gallery: ${detail.queue.length}`);
  console.log(`GET /specimens/:id p50 ${p50(page).toFixed(0)} ms`);
  console.log(
    `200 crops one after another: cold ${cold.toFixed(0)} ms, cached p50 ${p50(warm).toFixed(0)} ms`,
  );
  console.log(
    `report.pdf (draft) p50 ${p50(report).toFixed(0)} ms, max ${Math.max(...report).toFixed(0)} ms`,
  );
} finally {
  await app.close();
  rmSync(dir, { recursive: true, force: true });
}
