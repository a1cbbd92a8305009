import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { sampleReport } from '../testing/specimen-report.js';
import { hasTool } from '../testing/tools.js';
import { DISCLAIMER, renderSpecimenPdf } from './specimen-pdf.js';

const havePdftoppm = hasTool('pdftoppm');
const havePdftotext = hasTool('pdftotext');
if (!havePdftoppm)
  console.warn('[skipped] PDF page pixels: needs pdftoppm (Debian: apt-get install poppler-utils)');
if (!havePdftotext)
  console.warn('[skipped] PDF text: needs pdftotext (Debian: apt-get install poppler-utils)');

function save(pdf: Buffer): string {
  const dir = mkdtempSync(join(tmpdir(), 'hv-report-'));
  writeFileSync(join(dir, 'report.pdf'), pdf);
  return dir;
}

/** Each page as greyscale pixels at 50 dpi (A4: 413 × 585). */
async function pages(pdf: Buffer): Promise<{ data: Buffer; width: number; height: number }[]> {
  const dir = save(pdf);
  execFileSync('pdftoppm', ['-r', '50', '-gray', '-png', join(dir, 'report.pdf'), join(dir, 'page')]);
  const files = readdirSync(dir)
    .filter((f) => f.startsWith('page'))
    .sort();
  return Promise.all(
    files.map(async (f) => {
      const { data, info } = await sharp(join(dir, f))
        .greyscale()
        .raw()
        .toBuffer({ resolveWithObject: true });
      return { data, width: info.width, height: info.height };
    }),
  );
}

/** Share of dark pixels (< 160) in a region given in fractions of the page. */
function ink(
  p: { data: Buffer; width: number; height: number },
  x0: number,
  y0: number,
  x1: number,
  y1: number,
) {
  let dark = 0;
  let n = 0;
  for (let y = Math.floor(y0 * p.height); y < y1 * p.height; y++)
    for (let x = Math.floor(x0 * p.width); x < x1 * p.width; x++) {
      n += 1;
      if (p.data[y * p.width + x] < 160) dark += 1;
    }
  return dark / n;
}

function text(pdf: Buffer): string {
  const dir = save(pdf);
  return execFileSync('pdftotext', ['-layout', join(dir, 'report.pdf'), '-'], { encoding: 'utf8' });
}

describe('specimen PDF report', () => {
  it('is a PDF whose bytes depend only on the input', async () => {
    const report = await sampleReport({ gallery: 3 });
    const a = await renderSpecimenPdf(report);
    expect(a.subarray(0, 5).toString()).toBe('%PDF-');
    expect((await renderSpecimenPdf(report)).equals(a)).toBe(true);
  });

  it.skipIf(!havePdftotext)(
    'names the specimen, model, sign-off, revision, and carries the disclaimer on every page',
    async () => {
      const report = await sampleReport({ gallery: 25 });
      const t = text(await renderSpecimenPdf(report));
      expect(t).toContain('SPEC-2026-0042');
      expect(t).toContain(report.model.sha256);
      expect(t).toContain('hematovision-wbc8, version 2026.12.02');
      expect(t).toContain('Signed off by Dr A. Morales on 2026-12-02 11:02 UTC');
      expect(t).toMatch(/REVISION\s[\s\S]*\b3\b/);
      expect(t).toMatch(/Neutrophil\s+116\s+59\.2%/);
      expect(t).toMatch(/Erythroblast\s+2\s+1\.0 \/ 100 WBC/);
      const pageCount = t.split('\f').filter((p) => p.trim()).length;
      expect(t.split(DISCLAIMER).length - 1).toBe(pageCount);
      expect(t).toContain(`page ${pageCount} of ${pageCount}`);
    },
  );

  it.skipIf(!havePdftotext)(
    'says NOT SIGNED — draft without a sign-off, and draws any Unicode a lab types',
    async () => {
      const report = {
        ...(await sampleReport({ gallery: 0, signed: false })),
        specimenId: 'Ωμέγα-β 12 · 試料',
      };
      const t = text(await renderSpecimenPdf(report));
      expect(t).toContain('NOT SIGNED — draft');
      expect(t).toContain('No cell was flagged for review or corrected.');
      expect(t).toContain('Ωμέγα-β 12 · 試料'.split(' ')[0]);
    },
  );

  it.skipIf(!havePdftoppm)(
    'draws the bar chart, and the gallery’s crops on pages that grow with it',
    async () => {
      const none = await pages(await renderSpecimenPdf(await sampleReport({ gallery: 0 })));
      const many = await pages(await renderSpecimenPdf(await sampleReport({ gallery: 45 })));
      expect(none).toHaveLength(2);
      expect(many.length).toBeGreaterThanOrEqual(4);
      // The chart sits right of the table, about 32–46% down page 1: its bars are dark; an empty chart is not.
      const chart = ink(none[0], 0.6, 0.33, 0.98, 0.47);
      expect(chart).toBeGreaterThan(0.04);
      const blank = await pages(
        await renderSpecimenPdf({
          ...(await sampleReport({ gallery: 0 })),
          differential: {
            counts: {},
            percentages: { neutrophil: 0, lymphocyte: 0 },
            total: 0,
            per100White: {},
          },
        }),
      );
      expect(ink(blank[0], 0.6, 0.33, 0.98, 0.47)).toBeLessThan(chart / 3);
      // Crops fill the gallery page; without cells that area is empty.
      expect(ink(many[1], 0.08, 0.1, 0.92, 0.8)).toBeGreaterThan(0.1);
      expect(ink(none[1], 0.08, 0.15, 0.92, 0.8)).toBeLessThan(0.01);
    },
  );

  it.skipIf(!havePdftotext)('works with the built-in font alone, replacing what it cannot draw', async () => {
    const report = { ...(await sampleReport({ gallery: 2, signed: false })), specimenId: 'Ωμέγα-7 café' };
    const t = text(await renderSpecimenPdf(report, { builtInFont: true }));
    expect(t).toContain('?????-7 café');
    expect(t).toContain('NOT SIGNED — draft');
    expect(t).toContain(DISCLAIMER);
    expect(t).toContain(report.model.sha256);
  });

  it('keeps a report whose crop is damaged, saying so in its place', async () => {
    const report = await sampleReport({ gallery: 2 });
    report.gallery[0].crop = Buffer.from('not an image');
    const pdf = await renderSpecimenPdf(report);
    if (havePdftotext) expect(text(pdf)).toMatch(/Crop could not be\s+read/);
  });
});
