/**
 * End to end in real Chromium, the practice page: questions from reviewed cases (the reviewer's label the key,
 * the model shown only after answering), a keyboard-only round, an empty pool, and the bundled teaching cells
 * on a fresh install. Writes full-page screenshots to test-results/screenshots/.
 */
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HematoVision } from '../pipeline.js';
import { buildApp } from '../server/app.js';
import { SHOT_DIR } from '../testing/browser.js';
import { canRunWebE2e, seedCases, startWebE2e, type Upload, type WebE2e } from '../testing/web-e2e.js';
import type { CaseResult } from './api.js';
import { displayLabel, formatPercent, NBSP } from './format.js';
import { scoreText } from './practice.js';

describe.skipIf(!canRunWebE2e())('web UI end to end (Chromium): practice', () => {
  let e: WebE2e;
  let reviewedCase: CaseResult;
  let tmp: string,
    webDir: string,
    vision: HematoVision,
    page: Page,
    base: string,
    images: Upload[],
    consoleErrors: string[];
  beforeAll(async () => {
    e = await startWebE2e();
    ({ tmp, webDir, vision, page, base, images, consoleErrors } = e);
    await seedCases(e);
    // One case reviewed, its label corrected (through the UI in e2e-history.test.ts; through the API here).
    const { cases } = (await (await page.request.get(`${base}/api/v1/cases`)).json()) as {
      cases: CaseResult[];
    };
    const c = cases.find((k) => k.file === images[0].name)!;
    const corrected = vision.card.classes.find((k) => k !== c.label)!;
    const patched = await page.request.patch(`${base}/api/v1/cases/${c.id}`, {
      data: {
        reviewLabel: corrected,
        reviewer: 'Dr E. Tester',
        note: 'Lobulated nucleus: corrected in the e2e test.',
      },
    });
    expect(patched.status()).toBe(200);
    reviewedCase = (await (await page.request.get(`${base}/api/v1/cases/${c.id}`)).json()) as CaseResult;
    await page.goto(base);
  });

  afterAll(async () => {
    await e?.close();
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

  describe('once the reviewed case is deleted', () => {
    beforeAll(async () => {
      // Deleted through the UI in e2e-history.test.ts; through the API here.
      const del = await page.request.delete(`${base}/api/v1/cases/${reviewedCase.id}`, {
        data: { reason: 'duplicate of another field' },
      });
      expect(del.status()).toBe(204);
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
      // Leave the fresh server's page first: a connection the page still holds would keep close() waiting,
      // and a failed wait above would then be reported as this test's timeout instead of its own error.
      await page.goto('about:blank').catch(() => undefined);
      await fresh.close();
    }
  });

  it('logged no browser error (CSP violations included)', () => {
    expect(consoleErrors).toEqual([]);
  });
});
