/**
 * End to end in real Chromium (accounts off, a fake model): a specimen's details edited on its page, an empty
 * specimen deleted there with a reason and restored from the audit trail, and a specimen holding an image not
 * offered for deletion. Screenshots go to test-results/screenshots/specimen-edit-*.png.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../server/app.js';
import { builtWeb, CHROMIUM, haveChromium, openBrowser, SHOT_DIR } from '../testing/browser.js';
import { fakeVision, multipart, solidJpeg } from '../testing/server.js';

const API = '/api/v1';
if (!haveChromium) console.warn(`[e2e specimen edit] skipped: no Chromium at ${CHROMIUM}.`);

describe.skipIf(!haveChromium)('specimen details end to end (Chromium)', () => {
  let tmp: string;
  let app: FastifyInstance;
  let browser: Browser;
  let page: Page;
  let base: string;
  let errors: string[];
  // The listening app serves only its own host: injected requests say they came to it.
  const headers = () => ({ host: new URL(base).host });
  const get = (url: string) => app.inject({ url, headers: headers() });
  const shot = (name: string) =>
    page.screenshot({ path: path.join(SHOT_DIR, `specimen-edit-${name}.png`), fullPage: true });

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(tmpdir(), 'hv-e2e-specimen-edit-'));
    const webDir = await builtWeb();
    app = await buildApp({ auth: 'off', vision: fakeVision(), dataDir: path.join(tmp, 'data'), webDir });
    base = await app.listen({ port: 0, host: '127.0.0.1' });
    ({ browser, page, errors } = await openBrowser({ timeout: 20_000 }));
    for (const id of ['EDIT-1', 'FULL-1'])
      await app.inject({ method: 'POST', url: `${API}/specimens`, payload: { id }, headers: headers() });
    const body = await multipart([{ name: 'r.jpg', bytes: await solidJpeg(32, 32, [220, 30, 30]) }]);
    const res = await app.inject({
      method: 'POST',
      url: `${API}/predict?specimen=FULL-1`,
      payload: body.payload,
      headers: { ...body.headers, ...headers() },
    });
    expect(res.statusCode).toBe(200);
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('edits the details, deletes an empty specimen with a reason, and restores it from the audit trail', async () => {
    await page.goto(`${base}/#/specimens/EDIT-1`);
    await page.locator('.specimen-details summary').click();
    await page.locator('#edit-specimen-source').fill('Ward 9');
    await page.locator('#edit-specimen-note').fill('lipaemic sample');
    await page.locator('#edit-specimen-target').selectOption('200');
    await page.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => page.locator('#status').textContent()).toContain('Specimen EDIT-1 saved.');
    await expect
      .poll(async () => (await get(`${API}/specimens/EDIT-1`)).json().specimen)
      .toMatchObject({ source: 'Ward 9', note: 'lipaemic sample', targetCount: 200 });
    await page.locator('.specimen-details summary').click();
    await shot('1-edited');

    await page.getByRole('button', { name: 'Delete specimen…' }).click();
    await page.locator('#delete-specimen-reason').fill('created by mistake');
    await page.getByRole('button', { name: 'Delete specimen', exact: true }).click();
    await page.waitForURL(/#\/specimens$/);
    expect((await get(`${API}/specimens/EDIT-1`)).statusCode).toBe(404);

    await page.goto(`${base}/#/audit`);
    const entry = page.locator('tr[data-action="delete"]');
    await expect.poll(() => entry.textContent()).toContain('created by mistake');
    await shot('2-audit');
    await entry.getByRole('button', { name: 'Restore' }).click();
    await expect.poll(() => page.locator('#status').textContent()).toContain('Specimen restored.');
    expect((await get(`${API}/specimens/EDIT-1`)).statusCode).toBe(200);

    // A specimen holding an image: no delete offered, and the page says why.
    await page.goto(`${base}/#/specimens/FULL-1`);
    await page.locator('.specimen-details summary').click();
    await expect
      .poll(() => page.locator('.specimen-details').textContent())
      .toContain('delete its image first');
    expect(await page.getByRole('button', { name: 'Delete specimen…' }).count()).toBe(0);
    expect(errors).toEqual([]);
  });
});
