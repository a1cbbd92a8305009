/**
 * What the e2e files of the web UI (src/web/e2e-*.test.ts) share: the real app with the real model serving the
 * built UI, Chromium on it, the images to upload, and the checks of a result card.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Browser, FileChooser, Locator, Page, Response } from 'playwright-core';
import sharp from 'sharp';
import { expect } from 'vitest';
import { DEFAULT_MODEL_PATH } from '../model/classifier.js';
import { pipeline, type HematoVision } from '../pipeline.js';
import { buildApp } from '../server/app.js';
import type { CaseResult, PredictResponse } from '../web/api.js';
import { REASON_TEXT } from '../web/components/review.js';
import { displayLabel, formatPercent } from '../web/format.js';
import { builtWeb, CHROMIUM, haveChromium, openBrowser } from './browser.js';
import { SHARED } from './shared.js';

const TEST_DIR = path.join(SHARED, 'data/kaggle-blood-cells/TEST');
const SHARED_IMAGES = ['NEUTROPHIL/_0_1469.jpeg', 'EOSINOPHIL/_0_1616.jpeg', 'LYMPHOCYTE/_0_1022.jpeg'];

export const haveModel = existsSync(DEFAULT_MODEL_PATH);
/** Whether the web e2e files can run; says why not, once per file, when they cannot. */
export function canRunWebE2e(): boolean {
  if (!haveChromium) {
    console.warn(`[e2e] skipped: no Chromium at ${CHROMIUM} (Debian: apt-get install -y chromium).`);
  } else if (!haveModel) {
    console.warn(
      `[e2e] skipped: no bundled model at ${DEFAULT_MODEL_PATH} (train it: npm run train:default).`,
    );
  }
  return haveChromium && haveModel;
}

export interface Upload {
  name: string;
  mimeType: string;
  buffer: Buffer;
}

/** A 320×240 pink field with a purple blob: a stand-in smear when ../shared is absent. */
async function syntheticSmear(name: string, cx: number, cy: number): Promise<Upload> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="320" height="240">
    <rect width="320" height="240" fill="#e9c9c9"/>
    <circle cx="60" cy="50" r="28" fill="#d99a9a"/><circle cx="250" cy="190" r="30" fill="#d99a9a"/>
    <circle cx="${cx}" cy="${cy}" r="30" fill="#6a3d9a"/><circle cx="${cx + 8}" cy="${cy - 6}" r="12" fill="#3f1f66"/>
  </svg>`;
  return {
    name,
    mimeType: 'image/jpeg',
    buffer: await sharp(Buffer.from(svg)).jpeg({ quality: 90 }).toBuffer(),
  };
}

/** Three Kaggle TEST images (used only to drive the UI, never to measure), or synthetic ones without ../shared. */
export async function testImages(): Promise<Upload[]> {
  if (SHARED_IMAGES.every((f) => existsSync(path.join(TEST_DIR, f)))) {
    return SHARED_IMAGES.map((f) => ({
      name: path.basename(f),
      mimeType: 'image/jpeg',
      buffer: readFileSync(path.join(TEST_DIR, f)),
    }));
  }
  console.warn(`[e2e] ${TEST_DIR} absent: uploading synthetic images instead.`);
  return Promise.all([
    syntheticSmear('synthetic-1.jpg', 160, 120),
    syntheticSmear('synthetic-2.jpg', 120, 100),
    syntheticSmear('synthetic-3.jpg', 200, 140),
  ]);
}

export const isPredict = (r: Response) =>
  r.url().endsWith('/api/v1/predict') && r.request().method() === 'POST';

export interface WebE2e {
  tmp: string;
  webDir: string;
  vision: HematoVision;
  app: FastifyInstance;
  base: string;
  browser: Browser;
  page: Page;
  /** Every error the page logged; each file ends by expecting it empty. */
  consoleErrors: string[];
  images: Upload[];
  close(): Promise<void>;
}

/**
 * The built UI served by the real app (accounts off) with the real model in its worker thread, as `npm start`
 * serves it, on a fresh data folder, and Chromium with one page on it. Practice draws on reviewed cases alone
 * (the bundled teaching set has its own test, on a fresh install).
 */
export async function startWebE2e(): Promise<WebE2e> {
  const tmp = mkdtempSync(path.join(tmpdir(), 'hv-e2e-'));
  const started: Partial<WebE2e> = { tmp };
  const close = async () => {
    await started.browser?.close();
    await started.app?.close();
    await started.vision?.close();
    rmSync(tmp, { recursive: true, force: true });
  };
  try {
    const webDir = await builtWeb();
    const images = await testImages();
    const vision = (started.vision = await pipeline({ worker: true }));
    const teachingDir = path.join(tmp, 'no-teaching-set');
    const app = (started.app = await buildApp({
      auth: 'off',
      vision,
      dataDir: path.join(tmp, 'data'),
      webDir,
      teachingDir,
    }));
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    const { browser, page, errors: consoleErrors } = await openBrowser();
    started.browser = browser;
    return { tmp, webDir, vision, app, base, browser, page, consoleErrors, images, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Uploads `files` through the page's file input, as one batch, and returns the server's answer. */
export async function uploadCases(page: Page, base: string, files: Upload[]): Promise<PredictResponse> {
  await page.goto(base);
  const [response] = await Promise.all([
    page.waitForResponse(isPredict),
    page.locator('#file-input').setInputFiles(files),
  ]);
  expect(response.status()).toBe(200);
  return (await response.json()) as PredictResponse;
}

/** The cases the history starts from: the first image alone, then every image as one batch. */
export async function seedCases(e: WebE2e): Promise<void> {
  await uploadCases(e.page, e.base, [e.images[0]]);
  await uploadCases(e.page, e.base, e.images);
}

/** The card of one predict result agrees with the server's answer, bars and numbers included. */
export async function expectCard(page: Page, c: CaseResult): Promise<void> {
  const card = page.locator(`article[data-case-id="${c.id}"]`);
  await expect.poll(() => card.locator('.prediction__label').textContent()).toBe(displayLabel(c.label));
  const rows = card.locator('table.probs tbody tr');
  const probs = Object.entries(c.probabilities);
  expect(await rows.count()).toBe(probs.length);
  for (const [cls, p] of probs) {
    const row = card.locator(`table.probs tr[data-class="${cls}"]`);
    expect(await row.locator('th').textContent()).toBe(displayLabel(cls));
    expect(await row.locator('.probs__value').textContent()).toBe(formatPercent(p));
  }
  if (c.label !== null) {
    expect(await card.textContent()).toContain(formatPercent(c.confidence));
    expect(await card.locator('.badge--review').count()).toBe(c.needsReview ? 1 : 0);
    // The badge says why, in words.
    for (const r of c.reviewReasons)
      expect(await card.locator('.badge--review').textContent()).toContain(REASON_TEXT[r]);
  }
  // One outline per located cell, drawn over the loaded image.
  await expect.poll(() => card.locator('.cell-box').count()).toBe(c.cells.length);
}

/** Focuses `input` and presses Space until Chromium opens the file chooser (3 tries, 15 s each). */
export async function chooserFromKeyboard(page: Page, input: Locator): Promise<FileChooser> {
  for (let attempt = 1; ; attempt++) {
    await input.focus();
    try {
      const [chooser] = await Promise.all([
        page.waitForEvent('filechooser', { timeout: 15_000 }),
        page.keyboard.press('Space'),
      ]);
      return chooser;
    } catch (e) {
      if (attempt === 3) throw e;
    }
  }
}
