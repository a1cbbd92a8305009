/**
 * End to end in real Chromium with accounts on: the first-start setup page creates the admin, sign-out,
 * sign-in through the form, a review and a sign-off recorded under the signed-in reviewer (no name to type),
 * an admin's delete with a reason, seen and undone on the audit page, and a password changed on "Your
 * account" (its refusals said in the page). Screenshots go to test-results/screenshots/accounts-*.png.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD_MIN } from '../api/constants.js';
import { buildApp } from '../server/app.js';
import { createAccount } from '../server/auth/users.js';
import { fakeVision, solidPng } from '../testing/server.js';

const CHROMIUM = '/usr/bin/chromium';
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const shotDir = path.join(repoRoot, 'test-results/screenshots');
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`[e2e accounts] skipped: no Chromium at ${CHROMIUM}.`);

const PASSWORD = 'a long lab passphrase';

describe.skipIf(!haveChromium)('accounts end to end (Chromium)', () => {
  let tmp: string;
  let app: FastifyInstance;
  let browser: Browser;
  let page: Page;
  let base: string;
  const consoleErrors: string[] = [];

  const shot = (name: string) =>
    page.screenshot({ path: path.join(shotDir, `accounts-${name}.png`), fullPage: true });

  async function signIn(name: string, password = PASSWORD): Promise<void> {
    await page.locator('#login-name').fill(name);
    await page.locator('#login-password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#sign-out').waitFor();
  }

  async function signOut(): Promise<void> {
    await page.locator('#sign-out').click();
    await page.locator('#login-name').waitFor();
  }

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(tmpdir(), 'hv-e2e-accounts-'));
    mkdirSync(shotDir, { recursive: true });
    const webDir = path.join(tmp, 'web');
    const { build } = await import('vite');
    await build({
      configFile: path.join(repoRoot, 'vite.config.ts'),
      logLevel: 'warn',
      build: { outDir: webDir, emptyOutDir: true },
    });
    app = await buildApp({ vision: fakeVision(), dataDir: path.join(tmp, 'data'), webDir });
    base = await app.listen({ port: 0, host: '127.0.0.1' });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-sync'],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('console', (m) => {
      // 401s of the signed-out state are expected; anything else is a bug.
      if (m.type() === 'error' && !/401/.test(m.text())) consoleErrors.push(m.text());
    });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('creates the admin on the setup page, signs out and in through the form', async () => {
    const token = app.auth.setupToken;
    expect(token).toBeTruthy();
    // Any page while signed out is the sign-in page.
    await page.goto(`${base}/#/history`);
    await page.locator('#login-name').waitFor();
    expect(await page.locator('.site-nav a[data-route="history"]').isHidden()).toBe(true);

    await page.goto(`${base}/#/setup?token=${token}`);
    await page.locator('#setup-name').fill('admin');
    await page.locator('#setup-display').fill('Lab Admin');
    await page.locator('#setup-password').fill(PASSWORD);
    await page.locator('#setup-again').fill(PASSWORD);
    await shot('1-setup');
    await page.getByRole('button', { name: 'Create admin account' }).click();
    await page.locator('#sign-out').waitFor();
    await expect.poll(() => page.locator('#account').textContent()).toContain('Lab Admin');
    expect(await page.locator('.site-nav a[data-route="audit"]').isVisible()).toBe(true);
    await shot('2-signed-in-admin');

    await signOut();
    await page.locator('#login-name').fill('admin');
    await page.locator('#login-password').fill('wrong password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.locator('#alert').textContent()).toMatch(/Wrong name or password/);
    await shot('3-sign-in-refused');
    await signIn('admin');
    await signOut();
  }, 60_000);

  it('reviews and signs as the signed-in reviewer, with no name to type', async () => {
    await createAccount(app.caseStore.accounts, {
      name: 'rev',
      displayName: 'Dr Rita Reviewer',
      role: 'reviewer',
      password: PASSWORD,
    });
    await signIn('rev');
    expect(await page.locator('.site-nav a[data-route="audit"]').isHidden()).toBe(true);
    // The page's own cookie uploads (page.request shares it): a specimen and a field of two cells.
    expect((await page.request.post(`${base}/api/v1/specimens`, { data: { id: 'ACC-1' } })).status()).toBe(
      201,
    );
    const upload = await page.request.post(`${base}/api/v1/predict?specimen=ACC-1`, {
      multipart: {
        images: { name: 'field.png', mimeType: 'image/png', buffer: await solidPng(120, 80, [200, 30, 30]) },
      },
    });
    expect(upload.status()).toBe(200);
    const caseId = ((await upload.json()) as { cases: { id: string }[] }).cases[0].id;

    await page.goto(`${base}/#/cases/${caseId}`);
    const who = page.locator('#review-reviewer');
    await who.waitFor();
    expect(await who.textContent()).toContain('Dr Rita Reviewer (rev)');
    expect(await page.locator('input[name="reviewer"]').count()).toBe(0);
    await page.locator('#review-label').selectOption('monocyte');
    await page.getByRole('button', { name: 'Save review' }).click();
    await expect.poll(() => page.locator('#review-current').textContent()).toContain('Dr Rita Reviewer');
    await shot('4-review-as-account');

    await page.goto(`${base}/#/specimens/ACC-1`);
    await page.locator('#sign-reviewer').waitFor();
    expect(await page.locator('#sign-reviewer').textContent()).toContain('Dr Rita Reviewer');
    await page.getByRole('button', { name: /^Sign revision/ }).click();
    await expect.poll(() => page.locator('#status').textContent()).toMatch(/signed by Dr Rita Reviewer/);
    await shot('5-signed-as-account');
    expect(await app.caseStore.signoffs('ACC-1')).toMatchObject([{ reviewer: 'Dr Rita Reviewer' }]);
    const reviews = await app.caseStore.reviews(caseId);
    expect(reviews.map((r) => r.reviewer)).toEqual(['Dr Rita Reviewer']);
    // A reviewer has no delete button.
    await page.goto(`${base}/#/cases/${caseId}`);
    await page.locator('#review-reviewer').waitFor();
    expect(await page.getByRole('button', { name: 'Delete case…' }).count()).toBe(0);
    await signOut();

    // The admin deletes it with a reason, then finds and restores it on the audit page.
    await signIn('admin');
    await page.goto(`${base}/#/cases/${caseId}`);
    await page.getByRole('button', { name: 'Delete case…' }).click();
    await page.locator('#delete-reason').fill('uploaded to the wrong specimen');
    await page.getByRole('button', { name: 'Delete case', exact: true }).click();
    await page.waitForURL(/#\/history$/);
    await page.goto(`${base}/#/audit`);
    const deleted = page.locator('tr[data-action="delete"]');
    await deleted.waitFor();
    expect(await deleted.textContent()).toContain('uploaded to the wrong specimen');
    expect(await page.locator('tbody tr').allTextContents()).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/revreview.*monocyte/),
        expect.stringMatching(/revsign/),
      ]),
    );
    // Sign-ins are on it too, with the address they came from.
    expect(await page.locator('tr[data-action="sign-in"]').first().textContent()).toMatch(
      /adminsign-inuser admin.*127\.0\.0\.1/,
    );
    await shot('6-audit');
    await deleted.getByRole('button', { name: 'Restore' }).click();
    await page.locator('tr[data-action="restore"]').waitFor();
    expect((await app.caseStore.get(caseId))?.deleted).toBeNull();
    await shot('7-audit-restored');
    expect(consoleErrors).toEqual([]);
  }, 90_000);

  it('changes the password on "Your account", says why it refuses, and only the new one signs in', async () => {
    const NEW = 'a brand new lab passphrase';
    await createAccount(app.caseStore.accounts, {
      name: 'north',
      displayName: 'North Clinic Desk',
      role: 'clinic',
      clinic: 'North',
      password: PASSWORD,
    });
    await page.goto(`${base}/#/`);
    await page.locator('#sign-out, #login-name').first().waitFor();
    if (await page.locator('#sign-out').isVisible()) await signOut();
    await signIn('north');
    // The same account signed in elsewhere: the change ends that session.
    const elsewhere = await browser.newContext();
    expect(
      (
        await elsewhere.request.post(`${base}/api/v1/session`, {
          data: { name: 'north', password: PASSWORD },
        })
      ).status(),
    ).toBe(200);
    const sent: string[] = [];
    page.on('request', (r) => {
      if (r.url().endsWith('/api/v1/account/password')) sent.push(r.method());
    });

    // Reached from the name in the header.
    await page.locator('#account-link').click();
    await page.waitForURL(/#\/account$/);
    await page.getByRole('heading', { name: 'Change password' }).waitFor();
    expect(await page.locator('#account-link').getAttribute('aria-current')).toBe('page');
    expect(await page.locator('.account-details').textContent()).toMatch(
      /North Clinic Desk.*north.*clinic.*North/,
    );
    const current = page.locator('#account-current');
    const next = page.locator('#account-new');
    const again = page.locator('#account-again');
    const submit = page.getByRole('button', { name: 'Change password' });
    const problem = page.locator('#password-problem');
    expect(await page.locator('#account-new-hint').textContent()).toContain(
      `At least ${PASSWORD_MIN} characters`,
    );

    // Refused in the page, nothing sent: too short (the API's own minimum), then two different new ones.
    const short = 'x'.repeat(PASSWORD_MIN - 1);
    await current.fill(PASSWORD);
    await next.fill(short);
    await again.fill(short);
    await submit.click();
    await expect
      .poll(() => problem.textContent())
      .toContain(`too short: at least ${PASSWORD_MIN} characters`);
    expect(await next.getAttribute('aria-invalid')).toBe('true');
    await next.fill(NEW);
    await again.fill(`${NEW}!`);
    await submit.click();
    await expect.poll(() => problem.textContent()).toMatch(/two new passwords differ/);
    expect(await again.getAttribute('aria-invalid')).toBe('true');
    expect(await next.getAttribute('aria-invalid')).toBeNull();
    expect(sent).toEqual([]);

    // Refused by the server: a wrong current password (403 wrong_password).
    await current.fill('not my password at all');
    await again.fill(NEW);
    await submit.click();
    await expect
      .poll(() => problem.textContent())
      .toBe('The current password is wrong. Nothing was changed.');
    expect(await page.locator('#alert').textContent()).toBe(
      'The current password is wrong. Nothing was changed.',
    );
    expect(await current.getAttribute('aria-invalid')).toBe('true');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('account-current');
    await shot('8-password-wrong-current');

    // Rate limited (429): the server's refusal as it sends it, answered here so the real budget is not spent.
    await page.route('**/api/v1/account/password', (route) =>
      route.fulfill({
        status: 429,
        contentType: 'application/json',
        headers: { 'retry-after': '754' },
        body: JSON.stringify({
          error: 'too_many_attempts',
          message: 'Too many password changes: at most 10 per 15 min. Retry in 754 s.',
        }),
      }),
    );
    await current.fill(PASSWORD);
    await submit.click();
    await expect
      .poll(() => problem.textContent())
      .toBe('Too many attempts to change the password. Nothing was changed; try again in 13 minutes.');
    await page.unroute('**/api/v1/account/password');

    // Changed: the form empties, this session stays, the other one ends.
    await current.fill(PASSWORD);
    await next.fill(NEW);
    await again.fill(NEW);
    await submit.click();
    await expect.poll(() => page.locator('#status').textContent()).toMatch(/^Password changed\./);
    expect(await problem.isHidden()).toBe(true);
    expect([await current.inputValue(), await next.inputValue(), await again.inputValue()]).toEqual([
      '',
      '',
      '',
    ]);
    await shot('9-password-changed');
    expect(sent).toEqual(['PUT', 'PUT', 'PUT']);
    expect((await page.request.get(`${base}/api/v1/cases`)).status()).toBe(200);
    expect((await elsewhere.request.get(`${base}/api/v1/cases`)).status()).toBe(401);
    await elsewhere.close();

    // Signed out, the old password no longer signs in; the new one does.
    await signOut();
    await page.locator('#login-name').fill('north');
    await page.locator('#login-password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.locator('#alert').textContent()).toMatch(/Wrong name or password/);
    await signIn('north', NEW);
    await expect.poll(() => page.locator('#account').textContent()).toContain('North Clinic Desk');
    // The refusals above log their status codes; anything else is a bug.
    expect(consoleErrors.filter((e) => !/status of (403|429)/.test(e))).toEqual([]);
  }, 90_000);
});
