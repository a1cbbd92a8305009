/**
 * End to end in real Chromium on the admin page (#/admin) with the bundled model: align the active model to
 * the lab's stored images from the page — refused while fewer than 50 are stored, then started, followed to
 * its result line, the aligned version listed but not active. Screenshots: test-results/screenshots/align-*.png.
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
import { builtWeb, haveChromium, openBrowser, SHOT_DIR } from '../testing/browser.js';
import { teachingCells } from '../testing/reviewed.js';
import { multipart } from '../testing/server.js';

const API = '/api/v1';
const haveModel = existsSync(DEFAULT_MODEL_PATH);

describe.skipIf(!haveChromium || !haveModel)('alignment on the admin page (Chromium, bundled model)', () => {
  let tmp: string;
  let vision: SwappableVision;
  let app: FastifyInstance;
  let browser: Browser;
  let page: Page;
  let base: string;
  let errors: string[];
  const host = () => new URL(base).host;
  const shot = (name: string) =>
    page.screenshot({ path: path.join(SHOT_DIR, `align-${name}.png`), fullPage: true });
  const row = (version: number) => page.locator(`#model-versions tr[data-version="${version}"]`);

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(tmpdir(), 'hv-e2e-align-'));
    const webDir = await builtWeb();
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

  it('refuses with too few stored images, then aligns from the page into a version that is not active', async () => {
    await page.goto(`${base}/#/admin`);
    await row(1).waitFor();
    await page.locator('#start-alignment').click();
    await expect
      .poll(() => page.locator('#alert').textContent(), { timeout: 30_000 })
      .toBe('Aligning needs at least 50 stored images of this lab; there are 0.');

    // The lab's images, through the API: 7 teaching images of each class (56).
    const cells = teachingCells(7);
    for (let i = 0; i < cells.length; i += 20) {
      const files = cells.slice(i, i + 20).map((c) => ({ name: c.file.split('/').pop()!, bytes: c.bytes }));
      const body = await multipart(files);
      const res = await app.inject({
        method: 'POST',
        url: `${API}/predict`,
        ...body,
        headers: { ...body.headers, host: host() },
      });
      expect(res.statusCode).toBe(200);
    }

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
    expect(errors.filter((e) => !/status of 409/.test(e))).toEqual([]);
  }, 300_000);
});
