/**
 * Times the specimen PDF report (src/report/specimen-pdf.ts) for a 200-cell specimen, the target
 * being ≤ 2 s: with 20 gallery cells (10% flagged or corrected, a usual count) and with all 200 in the
 * gallery (the worst case). Crops are the bundled teaching images (300 px), as JPEG and as PNG (a PNG is
 * decoded and recompressed into the PDF, a JPEG copied as it is).
 * Prints a Markdown section; scripts/bench.ts includes it in BENCHMARKS.md.
 *
 *   npx tsx scripts/bench-report.ts [runs=7]
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { loadTeachingSet, TEACHING_DIR } from '../src/teaching/manifest.js';
import { renderSpecimenPdf } from '../src/report/specimen-pdf.js';
import { sampleReport } from '../src/testing/specimen-report.js';

const runs = Number(process.argv[2] ?? 7);
const jpegs = loadTeachingSet().cells.map((c) => readFileSync(join(TEACHING_DIR, c.file)));
const pngs = await Promise.all(jpegs.map((j) => sharp(j).png().toBuffer()));

console.log('| specimen | gallery cells | crops | pages | PDF size | p50 | max |');
console.log('| --- | --- | --- | --- | --- | --- | --- |');
const cases: [number, 'JPEG' | 'PNG'][] = [
  [20, 'JPEG'],
  [200, 'JPEG'],
  [20, 'PNG'],
  [200, 'PNG'],
];
// First renders load the font and warm the code up; a server pays that once, so they are left out.
for (let i = 0; i < 3; i++) await renderSpecimenPdf(await sampleReport({ gallery: 20 }));
for (const [gallery, format] of cases) {
  const crops = format === 'PNG' ? pngs : jpegs;
  const report = await sampleReport({ cells: 200, gallery });
  report.gallery.forEach((g, i) => (g.crop = crops[i % crops.length]));
  const times: number[] = [];
  let pdf: Buffer = Buffer.alloc(0);
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    pdf = await renderSpecimenPdf(report);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  const pages = (pdf.toString('latin1').match(/\/Type \/Page\b/g) ?? []).length;
  console.log(
    `| 200 cells | ${gallery} | ${format} | ${pages} | ${(pdf.length / 1024).toFixed(0)} KiB | ` +
      `${times[Math.floor(runs / 2)].toFixed(0)} ms | ${times[runs - 1].toFixed(0)} ms |`,
  );
}
