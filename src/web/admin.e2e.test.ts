/**
 * End to end in real Chromium on the admin page (#/admin) with the bundled model: reviewed cells seeded
 * through the API (the teaching images with their expert labels), then the admin's steps on the page — start
 * an adaptation, follow its progress, read the candidate beside the active model, activate it, roll back.
 * New cases carry the active model's sha256 (API). Screenshots go to test-results/screenshots/admin-*.png.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MODEL_PATH } from '../model/classifier.js';
import { pipeline } from '../pipeline.js';
import { buildApp } from '../server/app.js';
import { SwappableVision } from '../server/models/swappable.js';
import { builtWeb, CHROMIUM, haveChromium, openBrowser, SHOT_DIR } from '../testing/browser.js';
import { seedReviewedCells, teachingCells, type Send } from '../testing/reviewed.js';
import { multipart } from '../testing/server.js';

const API = '/api/v1';
const haveModel = existsSync(DEFAULT_MODEL_PATH);
if (!haveChromium) {
  console.warn(`[e2e admin] skipped: no Chromium at ${CHROMIUM} (Debian: apt-get install -y chromium).`);
} else if (!haveModel) {
  console.warn(
    `[e2e admin] skipped: no bundled model at ${DEFAULT_MODEL_PATH} (train it: npm run train:default).`,
  );
}

interface ModelList {
  active: number;
  versions: { version: number; sha256: string; source: string; active: boolean }[];
}

describe.skipIf(!haveChromium || !haveModel)('admin page end to end (Chromium, bundled model)', () => {
  let tmp: string;
  let vision: SwappableVision;
  let app: FastifyInstance;
  let browser: Browser;
  let page: Page;
  let base: string;
  let errors: string[];
  // The listening app serves only its own host: injected requests say they came to it.
  const host = () => new URL(base).host;
  const send: Send = (req) => app.inject({ ...req, headers: { ...req.headers, host: host() } });
  const get = (url: string) => app.inject({ url, headers: { host: host() } });
  const shot = (name: string) =>
    page.screenshot({ path: path.join(SHOT_DIR, `admin-${name}.png`), fullPage: true });

  const models = async () => (await get(`${API}/admin/models`)).json() as ModelList;
  /** The sha256 a new case records: one teaching cell predicted through the API. */
  const newCaseSha = async () => {
    const [cell] = teachingCells(1);
    const res = await send({
      method: 'POST',
      url: `${API}/predict`,
      ...(await multipart([{ name: 'one.jpg', bytes: cell.bytes }])),
    });
    expect(res.statusCode).toBe(200);
    return (res.json() as { cases: { model: { sha256: string } }[] }).cases[0].model.sha256;
  };
  /** Waits for the page (activating a version loads its model into a new worker: seconds, not the 1 s default). */
  const poll = <T>(f: () => Promise<T>) => expect.poll(f, { timeout: 60_000 });
  const row = (version: number) => page.locator(`#model-versions tr[data-version="${version}"]`);

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(tmpdir(), 'hv-e2e-admin-'));
    const webDir = await builtWeb();
    // As the server runs it: the network in a worker thread, swappable when a version is activated.
    const load = (model: string) => pipeline({ model, worker: true });
    vision = new SwappableVision(await load(DEFAULT_MODEL_PATH));
    app = await buildApp({
      auth: 'off',
      vision,
      dataDir: path.join(tmp, 'data'),
      webDir,
      rateLimits: false,
      models: { path: DEFAULT_MODEL_PATH, load },
    });
    base = await app.listen({ port: 0, host: '127.0.0.1' });
    ({ browser, page, errors } = await openBrowser());
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await vision?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('adapts on reviewed cells from the page, activates the candidate and rolls back', async () => {
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

    // Reviewers' work, through the API: 10 teaching images of each class, each cell reviewed.
    const seeded = await seedReviewedCells(send, teachingCells(10));
    expect(seeded.reviewed).toBeGreaterThan(60);
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
    expect(await newCaseSha()).toBe(bundledSha);
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
    expect(await newCaseSha()).toBe(candidateSha);
    expect(await row(2).locator('code').getAttribute('title')).toBe(candidateSha);
    expect(await page.locator('#rollback').textContent()).toBe('Roll back to version 1');
    await shot('4-activated');

    // Roll back on the page: version 1 is active again, here and for new cases.
    await page.locator('#rollback').click();
    await poll(() => row(1).getAttribute('aria-current')).toBe('true');
    expect(await row(2).getAttribute('aria-current')).toBeNull();
    await poll(() => page.locator('#status').textContent()).toContain('Rolled back.');
    expect((await models()).active).toBe(1);
    expect(await newCaseSha()).toBe(bundledSha);
    await poll(() => page.locator('#model-info').textContent()).not.toMatch(/reviewed/);
    expect(await page.locator('#activate-candidate').textContent()).toBe('Activate candidate 2');
    // An undo, not a toggle: nothing is left to roll back to (it no longer goes forward to version 2).
    await poll(() => page.locator('#rollback').textContent()).toBe('Nothing to roll back to');
    expect(await page.locator('#rollback').isDisabled()).toBe(true);
    await shot('5-rolled-back');
    expect(errors.filter((e) => !/status of 400/.test(e))).toEqual([]);
  }, 420_000);
});
