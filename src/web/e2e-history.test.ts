/**
 * End to end in real Chromium, the history and case pages: the cases listed and exported, a review recorded
 * and kept, a filter, a deletion, the keyboard. Writes full-page screenshots to test-results/screenshots/.
 */
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HematoVision } from '../pipeline.js';
import { SHOT_DIR } from '../testing/browser.js';
import { canRunWebE2e, seedCases, startWebE2e, type Upload, type WebE2e } from '../testing/web-e2e.js';
import type { CaseResult } from './api.js';
import { displayLabel } from './format.js';

describe.skipIf(!canRunWebE2e())('web UI end to end (Chromium): history and cases', () => {
  let e: WebE2e;
  let reviewedCase: CaseResult;
  let vision: HematoVision, page: Page, base: string, images: Upload[], consoleErrors: string[];
  beforeAll(async () => {
    e = await startWebE2e();
    ({ vision, page, base, images, consoleErrors } = e);
    // The first image alone, then the batch: the cases the analyse page leaves behind.
    await seedCases(e);
  });

  afterAll(async () => {
    await e?.close();
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

  it('logged no browser error (CSP violations included)', () => {
    expect(consoleErrors).toEqual([]);
  });
});
