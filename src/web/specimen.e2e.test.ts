/**
 * End to end in real Chromium, a specimen's whole life: create it, add 3 batches into it, review 5 cells by
 * keyboard, sign, download the PDF. Screenshots of each step (and the PDF's first page rendered to PNG) go
 * to test-results/screenshots/specimen-*.png.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Browser, Page, Response } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MODEL_PATH } from '../model/classifier.js';
import { pipeline, type HematoVision } from '../pipeline.js';
import { buildApp } from '../server/app.js';
import { builtWeb, CHROMIUM, haveChromium, openBrowser, SHOT_DIR } from '../testing/browser.js';
import { SHARED } from '../testing/shared.js';
import { hasTool } from '../testing/tools.js';
import type { SpecimenDetail } from './api.js';

const TEST_DIR = path.join(SHARED, 'data/kaggle-blood-cells/TEST');
const SHARED_IMAGES = [
  'NEUTROPHIL/_0_1469.jpeg',
  'EOSINOPHIL/_0_1616.jpeg',
  'LYMPHOCYTE/_0_1022.jpeg',
  'MONOCYTE/_0_1120.jpeg',
];
const SPECIMEN = 'SPEC-E2E-0001';

const haveModel = existsSync(DEFAULT_MODEL_PATH);
const havePoppler = hasTool('pdftoppm');
if (!haveChromium) console.warn(`[e2e specimen] skipped: no Chromium at ${CHROMIUM}.`);
else if (!haveModel) console.warn(`[e2e specimen] skipped: no bundled model at ${DEFAULT_MODEL_PATH}.`);
if (!havePoppler)
  console.warn('[e2e specimen] PDF not rendered: needs pdftoppm (apt-get install poppler-utils)');

interface Upload {
  name: string;
  mimeType: string;
  buffer: Buffer;
}

/** A pink field with two purple blobs: a stand-in smear when ../shared is absent. */
async function syntheticSmear(name: string, shift: number): Promise<Upload> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="320" height="240">
    <rect width="320" height="240" fill="#e9c9c9"/>
    <circle cx="${80 + shift}" cy="90" r="30" fill="#6a3d9a"/><circle cx="${88 + shift}" cy="84" r="12" fill="#3f1f66"/>
    <circle cx="230" cy="${150 + shift / 2}" r="28" fill="#7a4daa"/>
  </svg>`;
  return {
    name,
    mimeType: 'image/jpeg',
    buffer: await sharp(Buffer.from(svg)).jpeg({ quality: 90 }).toBuffer(),
  };
}

/** Batch b's images (names differ per batch, as a slide's fields do). */
async function batch(b: number): Promise<Upload[]> {
  if (SHARED_IMAGES.every((f) => existsSync(path.join(TEST_DIR, f)))) {
    return SHARED_IMAGES.slice(b % 2, (b % 2) + 3).map((f, i) => ({
      name: `field-${b + 1}-${i + 1}.jpeg`,
      mimeType: 'image/jpeg',
      buffer: readFileSync(path.join(TEST_DIR, f)),
    }));
  }
  return Promise.all([0, 1, 2].map((i) => syntheticSmear(`field-${b + 1}-${i + 1}.jpg`, 10 * i + 5 * b)));
}

const isPredict = (r: Response) => r.url().includes('/api/v1/predict') && r.request().method() === 'POST';
const isCellReview = (r: Response) =>
  /\/cells\/\d+\/review$/.test(r.url()) && r.request().method() === 'POST';

describe.skipIf(!haveChromium || !haveModel)('specimen end to end (Chromium)', () => {
  let tmp: string;
  let vision: HematoVision;
  let app: FastifyInstance;
  let browser: Browser;
  let page: Page;
  let base: string;
  let consoleErrors: string[];

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(tmpdir(), 'hv-e2e-specimen-'));
    const webDir = await builtWeb();
    vision = await pipeline({ worker: true });
    app = await buildApp({ auth: 'off', vision, dataDir: path.join(tmp, 'data'), webDir });
    base = await app.listen({ port: 0, host: '127.0.0.1' });
    ({ browser, page, errors: consoleErrors } = await openBrowser({ context: { acceptDownloads: true } }));
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await vision?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const shot = (name: string) =>
    page.screenshot({ path: path.join(SHOT_DIR, `specimen-${name}.png`), fullPage: true });
  const detail = async () =>
    (await (
      await fetch(`${base}/api/v1/specimens/${encodeURIComponent(SPECIMEN)}`)
    ).json()) as SpecimenDetail;

  it('creates a specimen, adds 3 batches, reviews 5 cells by keyboard, signs and downloads the PDF', async () => {
    // 1. Create.
    await page.goto(`${base}/#/specimens`);
    await page.getByLabel('Accession / specimen ID').fill(SPECIMEN);
    await page.getByLabel('Source or clinic (optional)').fill('Ward 7, EDTA');
    await page.getByLabel('Target count').selectOption('200');
    await shot('01-new');
    await page.getByRole('button', { name: 'Create specimen' }).click();
    await page.waitForURL(`**/#/specimens/${SPECIMEN}`);
    await expect.poll(() => page.locator('h1').textContent()).toBe(`Specimen ${SPECIMEN}`);

    // 2. Three batches through the analyse page, into the specimen.
    let uploaded = 0;
    for (let b = 0; b < 3; b++) {
      await page.goto(`${base}/#/specimens/${SPECIMEN}`);
      await page.getByRole('link', { name: 'Add images' }).click();
      await expect.poll(() => page.locator('#specimen-select').inputValue()).toBe(SPECIMEN);
      const files = await batch(b);
      const [res] = await Promise.all([
        page.waitForResponse(isPredict),
        page.setInputFiles('#file-input', files),
      ]);
      expect(res.status()).toBe(200);
      expect(res.url()).toContain(`specimen=${SPECIMEN}`);
      uploaded += files.length;
      await expect.poll(() => page.locator('.specimen-added').count()).toBe(1);
      if (b === 0) await shot('02-batch-1');
    }
    let d = await detail();
    expect(d.specimen.imageCount).toBe(uploaded);
    expect(d.cells.length).toBeGreaterThanOrEqual(5);

    // 3. The specimen page: progress, differential, queue and gallery.
    await page.locator('a.specimen-added, .specimen-added a').first().click();
    await expect.poll(() => page.locator('.cell-tile').count()).toBe(d.queue.length + d.cells.length);
    expect(await page.locator('.specimen-progress').textContent()).toContain(`${d.progress.counted} of 200`);
    await shot('03-specimen');

    // 4. Five cells reviewed by keyboard: Enter confirms, a digit reclassifies, arrows move.
    await page.getByLabel('Reviewer', { exact: true }).fill('Dr E2E');
    await page.locator('.cell-tile').first().focus();
    const keys = ['Enter', '2', 'Enter', '1', 'Enter'];
    for (const key of keys) {
      // Move past cells reviewed already, by arrow.
      for (let i = 0; i < 50; i++) {
        const done = await page.evaluate(() => document.activeElement?.classList.contains('cell-tile--done'));
        if (!done) break;
        await page.keyboard.press('ArrowRight');
      }
      expect(await page.evaluate(() => document.activeElement?.classList.contains('cell-tile'))).toBe(true);
      const [res] = await Promise.all([page.waitForResponse(isCellReview), page.keyboard.press(key)]);
      expect(res.status()).toBe(200);
      // The page reloads the specimen after a review and ignores keys until it has: wait for that.
      await expect.poll(() => page.locator('main').getAttribute('aria-busy')).toBe('false');
      await expect
        .poll(() => page.evaluate(() => document.activeElement?.classList.contains('cell-tile')))
        .toBe(true);
    }
    d = await detail();
    const reviewed = d.cells.filter((c) => c.review !== null);
    expect(reviewed).toHaveLength(5);
    expect(reviewed.every((c) => c.review?.reviewer === 'Dr E2E')).toBe(true);
    await expect.poll(() => page.locator('.cell-tile--done').count()).toBeGreaterThanOrEqual(5);
    await shot('04-reviewed');

    // 5. Sign.
    await page.getByLabel('Signed by').fill('Dr A. Morales');
    const [signed] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/sign')),
      page.getByRole('button', { name: /Sign revision 1/ }).click(),
    ]);
    expect(signed.status()).toBe(201);
    await expect.poll(() => page.locator('.report-panel').textContent()).toContain('signed by Dr A. Morales');
    await shot('05-signed');

    // 6. Download the signed PDF; its first page as PNG.
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.locator('#report-download').click(),
    ]);
    expect(download.suggestedFilename()).toBe(`hematovision-${SPECIMEN}-r1.pdf`);
    const pdfPath = path.join(tmp, 'report.pdf');
    await download.saveAs(pdfPath);
    expect(readFileSync(pdfPath).subarray(0, 5).toString()).toBe('%PDF-');
    if (havePoppler) {
      execFileSync('pdftoppm', [
        '-r',
        '80',
        '-png',
        '-f',
        '1',
        '-l',
        '1',
        '-singlefile',
        pdfPath,
        path.join(SHOT_DIR, 'specimen-06-report-page1'),
      ]);
      const text = execFileSync('pdftotext', ['-layout', pdfPath, '-'], { encoding: 'utf8' });
      expect(text).toContain(SPECIMEN);
      expect(text).toContain('Signed off by Dr A. Morales');
    }
    expect(consoleErrors).toEqual([]);
  }, 600_000);
});
