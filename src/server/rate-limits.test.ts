// Rate limits with accounts on: a budget per account (whatever its address) or per address (anonymous), so
// accounts behind one clinic NAT do not share one; sign-in attempts per name and address (brute force).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildApp, type AppOptions } from './app.js';
import { createAccount, createApiToken } from './auth/users.js';
import { hardeningFromEnv } from './env.js';
import { DEFAULT_RATE_LIMITS } from './rate-limits.js';
import { fakeVision } from '../testing/server.js';

const API = '/api/v1';
const PASSWORD = 'correct horse battery';
const NAT = '198.51.100.20';

let dataDir: string;
let app: FastifyInstance;

beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'hv-rate-limits-'));
});
afterEach(async () => {
  await app?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function start(rateLimits: AppOptions['rateLimits']): Promise<void> {
  app = await buildApp({ vision: fakeVision(), dataDir, webDir: join(dataDir, 'no-web'), rateLimits });
  for (const name of ['north', 'south'])
    await createAccount(app.caseStore.accounts, {
      name,
      role: 'clinic',
      clinic: name,
      password: PASSWORD,
    });
}

const token = async (name: string) => (await createApiToken(app.caseStore.accounts, name, 'test')).token;
const get = (url: string, remoteAddress: string, headers: InjectOptions['headers'] = {}) =>
  app.inject({ url, remoteAddress, headers });
const signIn = (name: string, password: string, remoteAddress: string) =>
  app.inject({ method: 'POST', url: `${API}/session`, payload: { name, password }, remoteAddress });

describe('per account, else per address', () => {
  it('gives two accounts behind one address their own budgets, and an account one budget across addresses', async () => {
    await start({ max: 4 });
    const north = { authorization: `Bearer ${await token('north')}` };
    const south = { authorization: `Bearer ${await token('south')}` };
    for (let i = 0; i < 4; i++) expect((await get(`${API}/cases`, NAT, north)).statusCode).toBe(200);
    const over = await get(`${API}/cases`, NAT, north);
    expect(over.statusCode).toBe(429);
    expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(over.headers['retry-after'])).toBeLessThanOrEqual(60);
    expect(over.json()).toEqual({
      error: 'too_many_requests',
      message: expect.stringMatching(
        /^Too many requests from this account: at most 4 per 60 s\. Retry in \d+ s\.$/,
      ),
    });
    // Same address, another account: untouched.
    for (let i = 0; i < 4; i++) expect((await get(`${API}/cases`, NAT, south)).statusCode).toBe(200);
    // Same address, no account: the address's own budget, also untouched.
    expect((await get(`${API}/health`, NAT)).statusCode).toBe(200);
    // The account from elsewhere: still its (spent) budget.
    expect((await get(`${API}/cases`, '203.0.113.5', north)).statusCode).toBe(429);
  });

  it('counts anonymous requests, bad credentials included, by address before refusing them', async () => {
    await start({ max: 3 });
    const bad = { authorization: 'Bearer hv_guess' };
    for (let i = 0; i < 3; i++) expect((await get(`${API}/cases`, NAT, bad)).statusCode).toBe(401);
    const over = await get(`${API}/cases`, NAT, bad);
    expect(over.statusCode).toBe(429);
    expect(over.json().message).toMatch(/from this address/);
    expect((await get(`${API}/health`, NAT)).statusCode).toBe(429);
    expect((await get(`${API}/health`, '203.0.113.5')).statusCode).toBe(200);
    // A signed-in account behind the spent address is not held up by it.
    expect(
      (await get(`${API}/cases`, NAT, { authorization: `Bearer ${await token('north')}` })).statusCode,
    ).toBe(200);
  });
});

describe('sign-in brute force', () => {
  it('limits sign-in attempts per name and address, the right password included once over', async () => {
    await start({ signInMax: 3 });
    for (const name of ['north', 'NORTH', ' North '])
      expect((await signIn(name, 'guess-guess', NAT)).statusCode).toBe(401);
    const blocked = await signIn('north', PASSWORD, NAT);
    expect(blocked.statusCode).toBe(429);
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(60);
    expect(Number(blocked.headers['retry-after'])).toBeLessThanOrEqual(15 * 60);
    expect(blocked.json()).toMatchObject({
      error: 'too_many_attempts',
      message: expect.stringMatching(/at most 3 per 15 min\. Retry in \d+ s\./),
    });
    expect(blocked.cookies).toEqual([]);
    // The owner elsewhere, and another name here, are not locked out.
    expect((await signIn('north', PASSWORD, '203.0.113.5')).statusCode).toBe(200);
    expect((await signIn('south', PASSWORD, NAT)).statusCode).toBe(200);
    // Refused attempts are not audited (a flood must not fill the trail): the three failures only.
    const failed = await app.caseStore.accounts.auditEntries({
      action: 'sign-in.failed',
      limit: 10,
      offset: 0,
    });
    expect(failed.total).toBe(3);
  });

  it('limits sign-in attempts per address whatever the names (one password sprayed over many)', async () => {
    await start({ signInMax: 3, signInAddressMax: 4 });
    for (const name of ['ann', 'ben', 'cat', 'dan'])
      expect((await signIn(name, 'Summer2026!!', NAT)).statusCode).toBe(401);
    const blocked = await signIn('north', PASSWORD, NAT);
    expect(blocked.statusCode).toBe(429);
    expect(blocked.json().message).toMatch(
      /^Too many sign-in attempts from this address: at most 4 per 15 min/,
    );
    expect((await signIn('north', PASSWORD, '203.0.113.5')).statusCode).toBe(200);
  });

  it('limits password changes per account (a session left open is no password oracle)', async () => {
    await start({ signInMax: 2 });
    const headers = { authorization: `Bearer ${await token('north')}` };
    const change = (currentPassword: string) =>
      app.inject({
        method: 'PUT',
        url: `${API}/account/password`,
        payload: { currentPassword, newPassword: 'a brand new passphrase' },
        headers,
      });
    expect((await change('guess-one')).statusCode).toBe(403);
    expect((await change('guess-two')).statusCode).toBe(403);
    const over = await change(PASSWORD);
    expect(over.statusCode).toBe(429);
    expect(over.json().error).toBe('too_many_attempts');
    expect(over.headers['retry-after']).toBeDefined();
  });
});

describe('settings', () => {
  it('reads SIGN_IN_LIMIT and SIGN_IN_ADDRESS_LIMIT beside RATE_LIMIT and PREDICT_RATE_LIMIT', () => {
    expect(hardeningFromEnv({}).rateLimits).toEqual(DEFAULT_RATE_LIMITS);
    const env = {
      RATE_LIMIT: '50',
      PREDICT_RATE_LIMIT: '5',
      SIGN_IN_LIMIT: '4',
      SIGN_IN_ADDRESS_LIMIT: '40',
    };
    expect(hardeningFromEnv(env).rateLimits).toEqual({
      ...DEFAULT_RATE_LIMITS,
      max: 50,
      predictMax: 5,
      signInMax: 4,
      signInAddressMax: 40,
    });
    // RATE_LIMIT=0 turns every limit off.
    expect(hardeningFromEnv({ RATE_LIMIT: '0' }).rateLimits).toBe(false);
    expect(() => hardeningFromEnv({ SIGN_IN_LIMIT: '0' })).toThrow(
      /SIGN_IN_LIMIT must be a number of at least 1/,
    );
  });
});
