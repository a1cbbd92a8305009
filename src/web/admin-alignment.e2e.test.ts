/**
 * End to end in real Chromium on the admin page (#/admin) with the bundled model: align the active model to
 * the lab's stored images from the page — refused while fewer than 50 are stored, then started, followed to
 * its result line, the aligned version listed but not active. Screenshots: test-results/screenshots/align-*.png.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SHOT_DIR, type BrowserSession } from '../testing/browser.js';
import { startAdminPage, type BundledApp } from '../testing/bundled-app.js';
import { teachingCells, uploadCells } from '../testing/reviewed.js';
import { canRunWebE2e } from '../testing/web-e2e.js';

describe.skipIf(!canRunWebE2e())('alignment on the admin page (Chromium, bundled model)', () => {
  let e: BundledApp & BrowserSession;
  const shot = (name: string) =>
    e.page.screenshot({ path: path.join(SHOT_DIR, `align-${name}.png`), fullPage: true });
  const row = (version: number) => e.page.locator(`#model-versions tr[data-version="${version}"]`);

  beforeAll(async () => {
    e = await startAdminPage();
  }, 180_000);
  afterAll(() => e?.close());

  it('refuses with too few stored images, then aligns from the page into a version that is not active', async () => {
    const { page, base, send, errors } = e;
    await page.goto(`${base}/#/admin`);
    await row(1).waitFor();
    await page.locator('#start-alignment').click();
    await expect
      .poll(() => page.locator('#alert').textContent(), { timeout: 30_000 })
      .toBe('Aligning needs at least 50 stored images of this lab; there are 0.');

    // The lab's images, through the API: 7 teaching images of each class (56).
    await uploadCells(send, teachingCells(7));

    await page.locator('#start-alignment').click();
    const result = page.locator('#alignment-result');
    await expect
      .poll(
        async () => {
          if ((await page.locator('#alignment-state').textContent())?.startsWith('running'))
            if (!existsSync(path.join(SHOT_DIR, 'align-1-running.png'))) await shot('1-running');
          return (
            (await result.count()) > 0 || (await page.locator('#alignment-follow [role="alert"]').count())
          );
        },
        { timeout: 180_000, interval: 300 },
      )
      .toBe(true);
    expect(await result.textContent()).toMatch(
      /^Version 2 aligned on \d+ images: activate it above after checking it\. Images flagged unfamiliar: [\d.]+ % by the active model, [\d.]+ % by the aligned one/,
    );
    await expect
      .poll(() => page.locator('#status').textContent(), { timeout: 10_000 })
      .toContain('Alignment finished');
    await row(2).waitFor();
    expect(await row(2).textContent()).toContain('alignment');
    expect(await row(1).getAttribute('aria-current')).toBe('true');
    expect(await row(2).getAttribute('aria-current')).toBeNull();
    await shot('2-done');
    expect(errors.filter((m) => !/status of 409/.test(m))).toEqual([]);
  }, 300_000);
});
