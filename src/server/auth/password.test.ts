// An account changes its own password: the current one required, the rule of every password, its other
// sessions ended (not the one asking, not its API tokens), audited.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { PASSWORD_MIN } from '../../api/index.js';
import { buildApp } from '../app.js';
import { fakeVision } from '../../testing/server.js';
import { createAccount, createApiToken } from './users.js';

const API = '/api/v1';
const PASSWORD = 'correct horse battery';
const NEW = 'purple monkey dishwasher';

let dataDir: string;
let app: FastifyInstance;

beforeEach(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'hv-password-'));
  app = await buildApp({ vision: fakeVision(), dataDir, webDir: join(dataDir, 'no-web') });
  await createAccount(app.caseStore.accounts, {
    name: 'north',
    role: 'clinic',
    clinic: 'N',
    password: PASSWORD,
  });
  await createAccount(app.caseStore.accounts, { name: 'other', role: 'reviewer', password: PASSWORD });
});
afterEach(async () => {
  await app.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function session(name: string, password: string): Promise<string> {
  const res = await app.inject({ method: 'POST', url: `${API}/session`, payload: { name, password } });
  expect(res.statusCode).toBe(200);
  return `hv_session=${res.cookies.find((c) => c.name === 'hv_session')!.value}`;
}

const change = (headers: Record<string, string>, currentPassword: string, newPassword: string) =>
  app.inject({
    method: 'PUT',
    url: `${API}/account/password`,
    payload: { currentPassword, newPassword },
    headers,
    remoteAddress: '192.0.2.44',
  });

const casesWith = async (headers: Record<string, string>) =>
  (await app.inject({ url: `${API}/cases`, headers })).statusCode;

it('changes the password with the current one; other sessions end, this one and API tokens stay', async () => {
  const here = await session('north', PASSWORD);
  const elsewhere = await session('north', PASSWORD);
  const someoneElse = await session('other', PASSWORD);
  const { token } = await createApiToken(app.caseStore.accounts, 'north', 'scanner');

  const wrong = await change({ cookie: here }, 'not my password', NEW);
  expect(wrong.statusCode).toBe(403);
  expect(wrong.json()).toMatchObject({ error: 'wrong_password' });
  const short = await change({ cookie: here }, PASSWORD, 'x'.repeat(PASSWORD_MIN - 1));
  expect(short.statusCode).toBe(400);
  const same = await change({ cookie: here }, PASSWORD, PASSWORD);
  expect(same.json()).toMatchObject({ error: 'weak_password' });
  // Nothing changed yet: every session still works.
  expect(await casesWith({ cookie: elsewhere })).toBe(200);

  expect((await change({ cookie: here }, PASSWORD, NEW)).statusCode).toBe(204);
  expect(await casesWith({ cookie: here })).toBe(200);
  expect(await casesWith({ cookie: elsewhere })).toBe(401);
  expect(await casesWith({ cookie: someoneElse })).toBe(200);
  expect(await casesWith({ authorization: `Bearer ${token}` })).toBe(200);

  const signIn = (password: string) =>
    app.inject({ method: 'POST', url: `${API}/session`, payload: { name: 'north', password } });
  expect((await signIn(PASSWORD)).statusCode).toBe(401);
  expect((await signIn(NEW)).statusCode).toBe(200);
  const stored = await app.caseStore.accounts.findUser('north');
  expect(stored?.passwordHash).toMatch(/^\$argon2id\$/);

  const audit = await app.caseStore.accounts.auditEntries({ action: 'password.change', limit: 5, offset: 0 });
  expect(audit.entries).toMatchObject([{ actor: 'north', targetId: 'north', ip: '192.0.2.44' }]);
  expect(JSON.stringify(audit)).not.toContain(NEW);
});

it('needs a signed-in account; with a token every session of the account ends', async () => {
  expect((await change({}, PASSWORD, NEW)).statusCode).toBe(401);
  const cookie = await session('other', PASSWORD);
  const { token } = await createApiToken(app.caseStore.accounts, 'other', 'script');
  expect((await change({ authorization: `Bearer ${token}` }, PASSWORD, NEW)).statusCode).toBe(204);
  expect(await casesWith({ cookie })).toBe(401);
});
