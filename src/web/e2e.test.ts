/**
 * End to end in real Chromium: the built UI, served by the real app with the real model, driven like a user.
 * Writes full-page screenshots to test-results/screenshots/.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Browser, FileChooser, Locator, Page, Response } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MODEL_PATH } from '../model/classifier.js';
import { pipeline, type HematoVision } from '../pipeline.js';
import { buildApp } from '../server/app.js';
import { builtWeb, CHROMIUM, haveChromium, openBrowser, SHOT_DIR } from '../testing/browser.js';
import { SHARED } from '../testing/shared.js';
import type { CaseResult, PredictResponse } from './api.js';
import { REASON_TEXT } from './components/review.js';
import { displayLabel, formatPercent, NBSP } from './format.js';
import { scoreText } from './practice.js';

const TEST_DIR = path.join(SHARED, 'data/kaggle-blood-cells/TEST');
const SHARED_IMAGES = ['NEUTROPHIL/_0_1469.jpeg', 'EOSINOPHIL/_0_1616.jpeg', 'LYMPHOCYTE/_0_1022.jpeg'];

const haveModel = existsSync(DEFAULT_MODEL_PATH);
if (!haveChromium) {
  console.warn(`[e2e] skipped: no Chromium at ${CHROMIUM} (Debian: apt-get install -y chromium).`);
} else if (!haveModel) {
  console.warn(`[e2e] skipped: no bundled model at ${DEFAULT_MODEL_PATH} (train it: npm run train:default).`);
}

interface Upload {
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

async function testImages(): Promise<Upload[]> {
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

const isPredict = (r: Response) => r.url().endsWith('/api/v1/predict') && r.request().method() === 'POST';

describe.skipIf(!haveChromium || !haveModel)('web UI end to end (Chromium)', () => {
  let tmp: string;
  let vision: HematoVision;
  let app: FastifyInstance;
  let browser: Browser;
  let page: Page;
  let base: string;
  let images: Upload[];
  let consoleErrors: string[];
  let webDir: string;
  let reviewedCase: CaseResult;

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(tmpdir(), 'hv-e2e-'));
    webDir = await builtWeb();
    images = await testImages();
    // As `npm start` serves: the network in its worker thread.
    vision = await pipeline({ worker: true });
    // Practice on reviewed cases alone (the bundled teaching set has its own test below, on a fresh install).
    const teachingDir = path.join(tmp, 'no-teaching-set');
    app = await buildApp({ auth: 'off', vision, dataDir: path.join(tmp, 'data'), webDir, teachingDir });
    base = await app.listen({ port: 0, host: '127.0.0.1' });
    ({ browser, page, errors: consoleErrors } = await openBrowser());
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await vision?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  /** The card of one predict result agrees with the server's answer, bars and numbers included. */
  async function expectCard(c: CaseResult): Promise<void> {
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
  async function chooserFromKeyboard(input: Locator): Promise<FileChooser> {
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

  it('shows the model and analyses one image into a result card', async () => {
    await page.goto(base);
    await expect
      .poll(() => page.locator('#model-info').textContent())
      .toBe(`Model: ${vision.card.name} ${vision.card.version}`);
    expect(await page.locator('.disclaimer').textContent()).toContain(
      'Decision support for research and teaching — not a certified medical device.',
    );

    // The picker is a labelled, focusable file input.
    const input = page.getByLabel('Choose images…');
    await input.focus();
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('file-input');

    // ...and opens the file chooser from the keyboard. On a loaded CI machine Chromium once dropped the key
    // press (no chooser in 60 s; the same run passed on retry), so the press is repeated, never skipped.
    const chooser = await chooserFromKeyboard(input);
    expect(chooser.isMultiple()).toBe(true);
    const [response] = await Promise.all([page.waitForResponse(isPredict), chooser.setFiles([images[0]])]);
    expect(response.status()).toBe(200);
    const body = (await response.json()) as PredictResponse;
    expect(body.cases).toHaveLength(1);
    const c = body.cases[0] as CaseResult;
    expect(c.id).toBeTruthy();
    await expectCard(c);
    expect(await page.locator('.differential').count()).toBe(0);
    expect(await page.locator('#status').textContent()).toBe('Analysed 1 of 1 image.');

    // The heat-map toggle swaps the thumbnail for the server's heat map.
    const toggle = page.locator(`article[data-case-id="${c.id}"] button[aria-pressed]`);
    if (c.heatmapUrl) {
      await toggle.click();
      expect(await toggle.getAttribute('aria-pressed')).toBe('true');
      const img = page.locator(`article[data-case-id="${c.id}"] img.specimen__img`);
      expect(await img.getAttribute('src')).toBe(c.heatmapUrl);
      await expect
        .poll(() => img.evaluate((el: HTMLImageElement) => el.complete && el.naturalWidth > 0))
        .toBe(true);
      await toggle.click();
      expect(await img.getAttribute('src')).toBe(c.imageUrl);
    } else {
      expect(await toggle.isDisabled()).toBe(true);
    }
    await page.screenshot({ path: path.join(SHOT_DIR, 'result.png'), fullPage: true });
  });

  it('analyses a batch and shows its differential count', async () => {
    // Dropped onto the drop zone this time, as a user dragging files from the desktop would.
    const dataTransfer = await page.evaluateHandle(
      (files) => {
        const dt = new DataTransfer();
        for (const f of files) {
          const bytes = Uint8Array.from(atob(f.b64), (ch) => ch.charCodeAt(0));
          dt.items.add(new File([bytes], f.name, { type: f.mimeType }));
        }
        return dt;
      },
      images.map((i) => ({ name: i.name, mimeType: i.mimeType, b64: i.buffer.toString('base64') })),
    );
    await page.dispatchEvent('#dropzone', 'dragover', { dataTransfer });
    expect(await page.locator('#dropzone').getAttribute('class')).toContain('dropzone--over');
    const [response] = await Promise.all([
      page.waitForResponse(isPredict),
      page.dispatchEvent('#dropzone', 'drop', { dataTransfer }),
    ]);
    const body = (await response.json()) as PredictResponse;
    expect(body.cases).toHaveLength(images.length);
    for (const c of body.cases) await expectCard(c as CaseResult);

    const table = page.locator('.differential__table');
    await table.waitFor();
    // White cells in the table (erythroblasts and platelets are counted beside it), each with its bar.
    const white = Object.keys(body.differential.percentages);
    expect(await table.locator('tbody tr').count()).toBe(white.length);
    for (const cls of white) {
      const row = table.locator(`tbody tr[data-class="${cls}"]`);
      expect(await row.locator('th').textContent()).toBe(displayLabel(cls));
      expect(await row.locator('td').first().textContent()).toBe(String(body.differential.counts[cls]));
      const share = body.differential.percentages[cls] / 100;
      const width = await row.locator('.probs__bar').evaluate((el) => el.getBoundingClientRect().width);
      const track = await row.locator('.probs__track').evaluate((el) => el.getBoundingClientRect().width);
      expect(Math.abs(width - share * track)).toBeLessThan(2);
    }
    expect(await table.locator('tfoot td').first().textContent()).toBe(String(body.differential.total));
    await page.screenshot({ path: path.join(SHOT_DIR, 'differential.png'), fullPage: true });
  });

  it('lists every case in the history, with a CSV export', async () => {
    await page.getByRole('link', { name: 'History', exact: true }).click();
    await page.locator('.cases-table').waitFor();
    const total = 1 + images.length;
    expect(await page.locator('.cases-table tbody tr').count()).toBe(total);
    expect(await page.locator('.pager__range').textContent()).toBe(`1–${total} of ${total}`);
    expect(await page.locator('.cases-table tbody tr').first().textContent()).toContain(images.at(-1)!.name);

    const csvHref = await page.getByRole('link', { name: 'Download CSV' }).getAttribute('href');
    const csv = await page.request.get(new URL(csvHref!, base).toString());
    expect(csv.status()).toBe(200);
    expect((await csv.text()).trim().split('\n')).toHaveLength(total + 1);
    await page.screenshot({ path: path.join(SHOT_DIR, 'history.png'), fullPage: true });
  });

  it('records a corrected review beside the prediction, and keeps it after a reload', async () => {
    const firstName = images[0].name;
    await page.locator('.cases-table tbody a', { hasText: firstName }).first().click();
    await page.locator('.review-form').waitFor();
    const id = decodeURIComponent(new URL(page.url()).hash.replace('#/cases/', ''));
    const c = (await (await page.request.get(`${base}/api/v1/cases/${id}`)).json()) as CaseResult;
    expect(await page.locator('h1').textContent()).toBe(c.file);
    expect(await page.locator('.case-prediction .prediction__label').textContent()).toBe(
      displayLabel(c.label),
    );
    expect(await page.locator('#review-current').textContent()).toContain('Not reviewed yet');

    const corrected = vision.card.classes.find((k) => k !== c.label)!;
    await page.getByLabel('Reviewer').fill('Dr E. Tester');
    await page.getByLabel('Cell type').selectOption(corrected);
    await page.getByLabel('Note').fill('Lobulated nucleus: corrected in the e2e test.');
    await page.getByRole('button', { name: 'Save review' }).click();
    await expect
      .poll(() => page.locator('.review-current__label').textContent())
      .toBe(displayLabel(corrected));

    const checkReview = async () => {
      expect(await page.locator('.review-current__head').textContent()).toBe('Corrected to');
      expect(await page.locator('.review-current__reviewer').textContent()).toBe('Dr E. Tester');
      expect(await page.locator('.review-current__note').textContent()).toContain(
        'corrected in the e2e test',
      );
      // The review sits beside the model's prediction, not below it.
      const pred = (await page.locator('.case-prediction').boundingBox())!;
      const review = (await page.locator('.case-review').boundingBox())!;
      expect(review.x).toBeGreaterThanOrEqual(pred.x + pred.width);
      expect(Math.abs(review.y - pred.y)).toBeLessThan(5);
    };
    await checkReview();
    await page.screenshot({ path: path.join(SHOT_DIR, 'case.png'), fullPage: true });

    await page.reload();
    await page.locator('.review-current__label').waitFor();
    expect(await page.locator('.review-current__label').textContent()).toBe(displayLabel(corrected));
    await checkReview();
    const stored = (await (await page.request.get(`${base}/api/v1/cases/${id}`)).json()) as CaseResult;
    expect(stored.review).toMatchObject({ label: corrected, reviewer: 'Dr E. Tester' });
    reviewedCase = stored;
  });

  it('practises on the reviewed case: the reviewer’s label is the key, the model shown only after answering', async () => {
    const truth = reviewedCase.review!.label;
    const classes = vision.card.classes;
    await page.getByRole('link', { name: 'Practice', exact: true }).click();
    const heading = page.locator('#question-heading');
    await heading.waitFor();
    expect(await heading.textContent()).toBe('Question 1 of 1');
    expect(await page.locator('.lede').textContent()).toContain('never the model’s own prediction');
    expect(await page.locator('.practice-pool').textContent()).toBe('1 reviewed case in the question pool.');

    // Before the answer nothing of the model shows: no labelled box, no probabilities, no heat map.
    const cellBoxes = page.locator('.practice-image .cell-box');
    await expect.poll(() => cellBoxes.count()).toBe(reviewedCase.cells.length ? 1 : 0);
    expect(await page.locator('.practice-image .cell-box__label, .cell-box--review').count()).toBe(0);
    expect(await page.locator('.practice-layout table.probs, .practice-model').count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Heat map' }).count()).toBe(0);
    expect(await page.locator('.practice-image img').getAttribute('alt')).not.toContain(reviewedCase.file);
    expect(await page.locator('#score-value').textContent()).toBe(scoreText(0, 0));

    // One button per class, numbered for the keyboard; answer a wrong class with its digit key.
    const buttons = page.locator('.answer-grid button');
    expect(await buttons.count()).toBe(classes.length);
    for (const [i, k] of classes.entries()) {
      const b = page.getByRole('button', { name: displayLabel(k), exact: true });
      expect(await b.locator('kbd').textContent()).toBe(String(i + 1));
      expect(await b.getAttribute('aria-keyshortcuts')).toBe(String(i + 1));
    }
    await page.screenshot({ path: path.join(SHOT_DIR, 'practice-question.png'), fullPage: true });
    const wrong = classes.find((k) => k !== truth)!;
    await page.keyboard.press(String(classes.indexOf(wrong) + 1));

    const verdict = page.locator('#practice-verdict');
    expect(await verdict.getAttribute('aria-live')).toBe('polite');
    expect(await verdict.textContent()).toBe(
      `Incorrect: you answered ${displayLabel(wrong)}; the reviewer’s label is ${displayLabel(truth)}. Score ${scoreText(0, 1)}.`,
    );
    expect(await page.locator('.practice-answer-key .review-current__label').textContent()).toBe(
      displayLabel(truth),
    );
    expect(await page.locator('.practice-reviewer').textContent()).toBe('Dr E. Tester');
    expect(await page.locator('.answer-btn--truth').getAttribute('data-class')).toBe(truth);
    expect(await page.locator('.answer-btn--wrong').getAttribute('data-class')).toBe(wrong);

    // ...then the model: its label, and one bar per class with the stored probability.
    expect(await page.locator('.practice-model .prediction__label').textContent()).toBe(
      displayLabel(reviewedCase.label),
    );
    for (const [cls, p] of Object.entries(reviewedCase.probabilities)) {
      const row = page.locator(`.practice-model table.probs tr[data-class="${cls}"]`);
      expect(await row.locator('.probs__value').textContent()).toBe(formatPercent(p));
    }
    expect(await page.getByRole('button', { name: 'Heat map' }).isDisabled()).toBe(!reviewedCase.heatmapUrl);

    // The score counted the answer, per class too, and focus waits on the way on.
    expect(await page.locator('#score-value').textContent()).toBe(scoreText(0, 1));
    expect(await page.locator(`.practice-score__table tr[data-class="${truth}"] td`).textContent()).toBe(
      scoreText(0, 1),
    );
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('practice-next');
    await page.screenshot({ path: path.join(SHOT_DIR, 'practice.png'), fullPage: true });

    // Enter ends this one-question round with its confusion summary.
    await page.keyboard.press('Enter');
    const summary = page.locator('#summary-heading');
    await summary.waitFor();
    expect(await summary.textContent()).toBe(`Round complete: ${scoreText(0, 1)} correct`);
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('summary-heading');
    const row = page.locator(`.practice-summary__table tr[data-class="${truth}"]`);
    expect(await row.locator('td').allTextContents()).toEqual([scoreText(0, 1), `${displayLabel(wrong)} ×1`]);
    expect(await page.locator('.practice-summary__missed a').getAttribute('href')).toBe(
      `#/cases/${reviewedCase.id}`,
    );
    await page.screenshot({ path: path.join(SHOT_DIR, 'practice-summary.png'), fullPage: true });

    // A new round starts from a clean score; this time the answer is right (clicked, not typed).
    await page.getByRole('button', { name: 'Start a new round' }).click();
    await expect.poll(() => heading.textContent()).toBe('Question 1 of 1');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('question-heading');
    expect(await page.locator('#score-value').textContent()).toBe(scoreText(0, 0));
    await page.getByRole('button', { name: displayLabel(truth), exact: true }).click();
    expect(await verdict.textContent()).toBe(`Correct: ${displayLabel(truth)}. Score ${scoreText(1, 1)}.`);
    expect(await page.locator('.practice-score__session').textContent()).toBe(
      `This session: ${scoreText(1, 2)} correct.`,
    );
  });

  it('filters the history by review status and deletes a case after confirmation', async () => {
    await page.goto(`${base}/#/history`);
    await page.getByLabel('Review status').selectOption('true');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await expect.poll(() => page.locator('.pager__range').textContent()).toBe('1–1 of 1');
    expect(await page.locator('.cases-table tbody tr').getAttribute('data-case-id')).toBe(reviewedCase.id);
    expect(await page.locator('.cases-table tbody tr').textContent()).toContain('Corrected');

    await page.locator('.cases-table tbody a').click();
    await page.getByRole('button', { name: 'Delete case…' }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete this case?' });
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    expect((await page.request.get(`${base}/api/v1/cases/${reviewedCase.id}`)).status()).toBe(200);

    await page.getByRole('button', { name: 'Delete case…' }).click();
    // A reason is required (kept in the audit trail); without one the dialog stays open.
    await dialog.getByRole('button', { name: 'Delete case' }).click();
    expect(await dialog.isVisible()).toBe(true);
    await dialog.getByLabel('Reason').fill('duplicate of another field');
    await dialog.getByRole('button', { name: 'Delete case' }).click();
    await page.waitForURL(/#\/history$/);
    const total = images.length; // 1 + batch, minus the deleted case
    await expect.poll(() => page.locator('.pager__range').textContent()).toBe(`1–${total} of ${total}`);
    expect((await page.request.get(`${base}/api/v1/cases/${reviewedCase.id}`)).status()).toBe(404);
  });

  it('can be driven from the keyboard, with a visible focus ring', async () => {
    await page.goto(`${base}/#/history`);
    await page.reload();
    await page.locator('.cases-table').waitFor();
    const active = () =>
      page.evaluate(() => ({
        id: document.activeElement?.id,
        text: document.activeElement?.textContent?.trim(),
        outline: getComputedStyle(document.activeElement!).outlineStyle,
      }));
    await page.keyboard.press('Tab');
    expect((await active()).text).toBe('Skip to main content');
    await page.keyboard.press('Enter');
    expect((await active()).id).toBe('main');
    expect(new URL(page.url()).hash).toBe('#/history');
    await page.keyboard.press('Tab');
    expect(await active()).toMatchObject({ text: 'Download CSV', outline: 'solid' });
    // Open the first case from the keyboard.
    for (let i = 0; i < 10 && (await active()).text !== images.at(-1)!.name; i++)
      await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await page.locator('.review-form').waitFor();
    expect((await active()).id).toBe('page-heading');
  });

  it('practises keyboard-only on a pool without the cells reviewed as "other", and explains an empty pool', async () => {
    // The only reviewed case was deleted above: the page says how to fill the pool.
    await page.goto(`${base}/#/practice`);
    await page.reload();
    await page.locator('.practice-empty').waitFor();
    expect(await page.locator('.practice-empty h2').textContent()).toBe(
      'No reviewed cases to practise on yet',
    );
    expect(
      await page.locator('.practice-empty a').evaluateAll((as) => as.map((a) => a.getAttribute('href'))),
    ).toEqual(['#/', '#/history?reviewed=false']);
    await page.screenshot({ path: path.join(SHOT_DIR, 'practice-empty.png'), fullPage: true });

    const { cases } = (await (await page.request.get(`${base}/api/v1/cases`)).json()) as {
      cases: CaseResult[];
    };
    expect(cases).toHaveLength(images.length);
    const classes = vision.card.classes;
    const review = (id: string, reviewLabel: string) =>
      page.request.patch(`${base}/api/v1/cases/${id}`, {
        data: { reviewLabel, reviewer: 'Dr Keys', note: '' },
      });
    const [outside, ...asked] = cases;
    expect((await review(outside.id, 'other')).status()).toBe(200);
    const truths = new Map<string, string>();
    for (const c of asked) {
      truths.set(c.id, c.label ?? classes[0]); // confirm the model's own prediction
      expect((await review(c.id, truths.get(c.id)!)).status()).toBe(200);
    }

    await page.goto(`${base}/#/history`);
    await page.locator('.cases-table').waitFor();
    await page.goto(`${base}/#/practice`);
    const heading = page.locator('#question-heading');
    await heading.waitFor();
    expect(await page.locator('.practice-pool').textContent()).toBe(
      `${asked.length} reviewed cases in the question pool (1 left out: reviewed as Other white cell or Not a white cell).`,
    );

    const seen: string[] = [];
    let correct = 0;
    for (let q = 1; q <= asked.length; q++) {
      await expect.poll(() => heading.textContent()).toBe(`Question ${q} of ${asked.length}`);
      if (q > 1) expect(await page.evaluate(() => document.activeElement?.id)).toBe('question-heading');
      const pick = classes[(q - 1) % classes.length];
      await page.keyboard.press(String(classes.indexOf(pick) + 1));
      const href = await page.locator('.practice-model__link a').getAttribute('href');
      const id = decodeURIComponent(href!.replace('#/cases/', ''));
      seen.push(id);
      if (truths.get(id) === pick) correct++;
      expect(await page.locator('#score-value').textContent()).toBe(scoreText(correct, q));
      await page.keyboard.press('Enter');
    }
    // Every confirmed case once, the "other" one never.
    expect([...seen].sort()).toEqual([...truths.keys()].sort());
    await expect
      .poll(() => page.locator('#summary-heading').textContent())
      .toBe(`Round complete: ${scoreText(correct, asked.length)} correct`);
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('summary-heading');
    // Reviewers confirmed the model on every case, so the model matched them all.
    expect(await page.locator('.practice-summary > p').first().textContent()).toContain(
      `the model matched on ${asked.length} (100${NBSP}%)`,
    );
  });

  it('sends test-time augmentation when ticked, and the case says it was used', async () => {
    await page.goto(base);
    const box = page.getByLabel('Test-time augmentation');
    if (!vision.hasTta) {
      expect(await box.count()).toBe(0); // a model not calibrated for it is not offered it
      return;
    }
    await box.check();
    const isTtaPredict = (r: Response) =>
      r.url().endsWith('/api/v1/predict?tta=true') && r.request().method() === 'POST';
    const [response] = await Promise.all([
      page.waitForResponse(isTtaPredict),
      page.locator('#file-input').setInputFiles([images[0]]),
    ]);
    expect(response.status()).toBe(200);
    const c = ((await response.json()) as PredictResponse).cases[0] as CaseResult;
    expect(c.model?.tta).toBe(true);
    await expectCard(c);
    await page.goto(`${base}#/cases/${c.id}`);
    await expect
      .poll(() => page.locator('.page-head .muted').textContent())
      .toContain('with test-time augmentation (8 views per cell)');
  });

  it('practises on the bundled teaching cells on a fresh install, with a note after each answer', async () => {
    const fresh = await buildApp({
      auth: 'off',
      vision,
      dataDir: path.join(tmp, 'fresh-data'),
      webDir,
    });
    try {
      const freshBase = await fresh.listen({ port: 0, host: '127.0.0.1' });
      await page.goto(`${freshBase}/#/practice`);
      const heading = page.locator('#question-heading');
      await heading.waitFor();
      expect(await page.locator('.practice-pool').textContent()).toBe(
        '120 teaching cells from the PBC dataset in the question pool; cases you review join them.',
      );
      expect(await heading.textContent()).toMatch(/^Question 1 of \d+$/);
      // The question is a real image the browser could decode.
      await expect
        .poll(() => page.locator('.practice-image img').evaluate((img: HTMLImageElement) => img.naturalWidth))
        .toBeGreaterThan(100);
      await page.keyboard.press('1');
      const truth = await page.locator('.answer-btn--truth').getAttribute('data-class');
      expect(vision.card.classes).toContain(truth);
      // After the answer: how to recognise the right class.
      const note = page.locator('.practice-note');
      await note.waitFor();
      expect(await note.getAttribute('data-class')).toBe(truth);
      expect((await note.locator('.practice-note__text').textContent())?.length).toBeGreaterThan(40);
      await page.screenshot({ path: path.join(SHOT_DIR, 'practice-teaching.png'), fullPage: true });
    } finally {
      await fresh.close();
    }
  });

  it('offers the phone camera on a touch device, and analyses the photo it takes', async () => {
    // On a desktop the camera button is hidden: the file picker is the way in.
    await page.goto(base);
    expect(await page.locator('.camera-button').isVisible()).toBe(false);

    const phone = await browser.newPage({
      viewport: { width: 390, height: 844 },
      isMobile: true,
      hasTouch: true,
      deviceScaleFactor: 2,
    });
    try {
      phone.on('pageerror', (e) => consoleErrors.push(e.message));
      await phone.goto(base);
      const camera = phone.getByLabel('Take a photo…');
      await expect.poll(() => phone.locator('.camera-button').isVisible()).toBe(true);
      expect(await camera.getAttribute('capture')).toBe('environment');
      expect(await camera.getAttribute('accept')).toBe('image/*');
      // Not fullPage: Chromium drops the touch emulation while it captures a full page, hiding the button.
      await phone.screenshot({ path: path.join(SHOT_DIR, 'phone-camera.png') });
      const [response] = await Promise.all([
        phone.waitForResponse(isPredict),
        camera.setInputFiles([images[1]]),
      ]);
      expect(response.status()).toBe(200);
      const c = ((await response.json()) as PredictResponse).cases[0] as CaseResult;
      await expect
        .poll(() => phone.locator(`article[data-case-id="${c.id}"] .prediction__label`).textContent())
        .toBe(displayLabel(c.label));
    } finally {
      await phone.close();
    }
  });

  it('explains the model on the About page: classes, training counts, validation, what it flags', async () => {
    await page.goto(`${base}#/about`);
    const card = vision.card;
    await expect
      .poll(() => page.locator('#about-identity').textContent())
      .toBe(`${card.name} ${card.version}`);
    const text = (await page.locator('.about').textContent()) ?? '';
    for (const c of card.classes) expect(text).toContain(displayLabel(c));
    expect(text).toContain(card.modelSha256);
    expect(text).toContain(formatPercent(card.validation.accuracy));
    expect(text).toContain(card.intendedUse);
    // One row per training source, one column per class.
    expect(await page.locator('.about__counts tbody tr').count()).toBe(
      Object.keys(card.training.counts).length,
    );
    expect(await page.locator('.about__counts thead th').count()).toBe(card.classes.length + 1);
    expect(text).toContain(
      card.familiarity ? 'unlike the cell types it knows' : 'This model has no familiarity checks',
    );
    expect(await page.locator('.site-nav a[data-route="about"]').getAttribute('aria-current')).toBe('page');
    await page.screenshot({ path: path.join(SHOT_DIR, 'about.png'), fullPage: true });
  });

  it('logged no browser error (CSP violations included)', () => {
    expect(consoleErrors).toEqual([]);
  });
});
