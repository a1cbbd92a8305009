/**
 * End to end in real Chromium, the About page: what the model is, what it was trained and validated on, what
 * it flags. Writes a full-page screenshot to test-results/screenshots/about.png.
 */
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HematoVision } from '../pipeline.js';
import { SHOT_DIR } from '../testing/browser.js';
import { canRunWebE2e, startWebE2e, type WebE2e } from '../testing/web-e2e.js';
import { displayLabel, formatPercent } from './format.js';

describe.skipIf(!canRunWebE2e())('web UI end to end (Chromium): about', () => {
  let e: WebE2e;
  let vision: HematoVision, page: Page, base: string, consoleErrors: string[];
  beforeAll(async () => {
    e = await startWebE2e();
    ({ vision, page, base, consoleErrors } = e);
  });

  afterAll(async () => {
    await e?.close();
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
    if (card.familiarity?.disagreement) expect(text).toContain('three views of the cell');
    expect(await page.locator('.site-nav a[data-route="about"]').getAttribute('aria-current')).toBe('page');
    await page.screenshot({ path: path.join(SHOT_DIR, 'about.png'), fullPage: true });
  });

  it('logged no browser error (CSP violations included)', () => {
    expect(consoleErrors).toEqual([]);
  });
});
