/**
 * End to end in real Chromium on the admin page (#/admin) with the bundled model: reviewed cells seeded
 * through the API (the teaching images with their expert labels), then the admin's steps on the page — start
 * an adaptation, follow its progress, read the candidate beside the active model, activate it, roll back.
 * New cases carry the active model's sha256 (API). Screenshots go to test-results/screenshots/admin-*.png.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SHOT_DIR, type BrowserSession } from '../testing/browser.js';
import { API, newCaseSha, startAdminPage, type BundledApp } from '../testing/bundled-app.js';
import { seedReviewedCells, teachingCells } from '../testing/reviewed.js';
import { canRunWebE2e } from '../testing/web-e2e.js';

interface ModelList {
  active: number;
  versions: { version: number; sha256: string; source: string; active: boolean }[];
}

describe.skipIf(!canRunWebE2e())('admin page end to end (Chromium, bundled model)', () => {
  let e: BundledApp & BrowserSession;
  const shot = (name: string) =>
    e.page.screenshot({ path: path.join(SHOT_DIR, `admin-${name}.png`), fullPage: true });

  const models = async () =>
    (await e.send({ method: 'GET', url: `${API}/admin/models` })).json() as ModelList;
  /** Waits for the page (activating a version loads its model into a new worker: seconds, not the 1 s default). */
  const poll = <T>(f: () => Promise<T>) => expect.poll(f, { timeout: 60_000 });
  const row = (version: number) => e.page.locator(`#model-versions tr[data-version="${version}"]`);

  beforeAll(async () => {
    e = await startAdminPage();
  }, 180_000);
  afterAll(() => e?.close());

  it('adapts on reviewed cells from the page, activates the candidate and rolls back', async () => {
    const { page, base, send, errors } = e;
    // Too few reviews: the page says so instead of starting.
    await page.goto(`${base}/#/admin`);
    await row(1).waitFor();
    expect(await row(1).getAttribute('aria-current')).toBe('true');
    expect(await page.locator('#rollback').isDisabled()).toBe(true);
    expect(await page.locator('#rollback').textContent()).toBe('Nothing to roll back to');
    expect(await page.locator('#adaptation-jobs').textContent()).toContain('No adaptation yet.');
    await page.locator('#start-adaptation').click();
    await poll(() => page.locator('#alert').textContent()).toMatch(/each class needs at least 10/);
    await shot('1-too-few-reviews');

    // Reviewers' work, through the API: 5 teaching images of each class, each cell reviewed (the page's
    // smallest setting below needs no more).
    const seeded = await seedReviewedCells(send, teachingCells(5));
    expect(seeded.reviewed).toBe(40);
    const bundledSha = (await models()).versions[0].sha256;

    // The admin starts it on the page with the smallest setting the seeded cells allow, and follows it.
    await page.reload();
    await row(1).waitFor();
    await page.locator('#min-cells').fill('5');
    await page.locator('#start-adaptation').click();
    const state = page.locator('#job-state');
    await state.waitFor();
    const seen = new Set<string>();
    const progress: number[] = [];
    await expect
      .poll(
        async () => {
          const s = (await state.textContent()) ?? '';
          seen.add(s.split(' — ')[0]);
          progress.push(Number(await page.locator('#adaptation-follow progress').getAttribute('value')));
          if (s.startsWith('running') && !existsSync(path.join(SHOT_DIR, 'admin-2-running.png')))
            await shot('2-running');
          return s;
        },
        { timeout: 240_000, interval: 300 },
      )
      .toMatch(/^(succeeded|failed)/);
    expect(await page.locator('#adaptation-follow [role="alert"]').count()).toBe(0);
    // Ended: no stale stage ("succeeded — Storing…" read as still working), and the end is announced.
    expect(await state.textContent()).toBe('succeeded');
    await poll(() => page.locator('#status').textContent()).toContain('Adaptation finished');
    expect(seen.has('running')).toBe(true);
    expect(progress.some((p) => p > 0 && p < 1)).toBe(true);
    expect(progress.at(-1)).toBe(1);

    // The candidate beside the active model, on the held-back cells; stored but not active.
    const comparison = page.locator('#comparison');
    await comparison.waitFor();
    expect(await comparison.locator('thead').textContent()).toMatch(/Version 1.*Candidate 2/);
    const rows = await comparison.locator('tbody tr').allTextContents();
    for (const name of ['Accuracy', 'Macro-F1', 'Review rate', 'Silent errors', 'Calibration error (ECE)'])
      expect(rows.some((r) => r.startsWith(name))).toBe(true);
    expect(rows.filter((r) => r.startsWith('Recall:'))).toHaveLength(8);
    expect(await page.locator('#adaptation-follow').textContent()).toMatch(/Scored on \d+ held-back/);
    // How it learned, in one line: too few reviewed cells for fine-tuning, so a new head.
    expect(await page.locator('#recipe').textContent()).toMatch(/^A new head on the frozen backbone: /);
    await row(2).waitFor();
    expect(await row(2).textContent()).toContain('adaptation');
    expect(await row(1).getAttribute('aria-current')).toBe('true');
    expect(await page.locator('#adaptation-jobs').textContent()).toContain('succeeded');
    expect(await newCaseSha(send)).toBe(bundledSha);
    // A candidate scoring lower than the active model is said so in words.
    const acc = async (col: number) =>
      parseFloat(
        (await comparison.locator('tbody tr').first().locator('td').nth(col).textContent()) ?? 'NaN',
      );
    const worse = (await acc(1)) < (await acc(0));
    expect(await page.locator('#candidate-worse').count()).toBe(worse ? 1 : 0);
    await shot('3-compared');

    // Activate it on the page: new cases carry the candidate's sha256, without a restart.
    await page.locator('#activate-candidate').click();
    await poll(() => row(2).getAttribute('aria-current')).toBe('true');
    await poll(() => page.locator('#status').textContent()).toContain('Version 2 is active.');
    // The header names the model now served, and the candidate's button gives way to its state.
    await poll(() => page.locator('#model-info').textContent()).toMatch(/reviewed/);
    expect(await page.locator('#candidate-active').textContent()).toBe('Candidate 2 is active.');
    expect(await page.locator('#activate-candidate').count()).toBe(0);
    const list = await models();
    expect(list.active).toBe(2);
    const candidateSha = list.versions.find((v) => v.version === 2)?.sha256;
    expect(candidateSha).toMatch(/^[0-9a-f]{64}$/);
    expect(candidateSha).not.toBe(bundledSha);
    expect(await newCaseSha(send)).toBe(candidateSha);
    expect(await row(2).locator('code').getAttribute('title')).toBe(candidateSha);
    expect(await page.locator('#rollback').textContent()).toBe('Roll back to version 1');
    await shot('4-activated');

    // Roll back on the page: version 1 is active again, here and for new cases.
    await page.locator('#rollback').click();
    await poll(() => row(1).getAttribute('aria-current')).toBe('true');
    expect(await row(2).getAttribute('aria-current')).toBeNull();
    await poll(() => page.locator('#status').textContent()).toContain('Rolled back.');
    expect((await models()).active).toBe(1);
    expect(await newCaseSha(send)).toBe(bundledSha);
    await poll(() => page.locator('#model-info').textContent()).not.toMatch(/reviewed/);
    expect(await page.locator('#activate-candidate').textContent()).toBe('Activate candidate 2');
    // An undo, not a toggle: nothing is left to roll back to (it no longer goes forward to version 2).
    await poll(() => page.locator('#rollback').textContent()).toBe('Nothing to roll back to');
    expect(await page.locator('#rollback').isDisabled()).toBe(true);
    await shot('5-rolled-back');
    expect(errors.filter((m) => !/status of 400/.test(m))).toEqual([]);
  }, 420_000);
});
