// Sign-ins, failed sign-ins and sign-outs in the append-only audit trail: who (or which name was tried),
// from which address, when; never the password. Both stores keep the address (store contract).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { buildApp } from '../app.js';
import { fakeVision } from '../../testing/server.js';
import { createAccount } from './users.js';

const API = '/api/v1';
const PASSWORD = 'correct horse battery';

let dataDir: string;
let app: FastifyInstance;

beforeEach(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'hv-sign-in-audit-'));
  app = await buildApp({ vision: fakeVision(), dataDir, webDir: join(dataDir, 'no-web') });
  for (const [name, role] of [
    ['boss', 'admin'],
    ['rev', 'reviewer'],
  ] as const)
    await createAccount(app.caseStore.accounts, { name, role, password: PASSWORD });
});
afterEach(async () => {
  await app.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const signIn = (name: string, password: string, remoteAddress = '127.0.0.1') =>
  app.inject({ method: 'POST', url: `${API}/session`, payload: { name, password }, remoteAddress });

it('audits sign-ins, failed sign-ins (the name tried, never the password) and sign-outs, with the address', async () => {
  expect((await signIn('rev', 'guess-one-two', '203.0.113.9')).statusCode).toBe(401);
  expect((await signIn('nobody', 'guess-three', '203.0.113.9')).statusCode).toBe(401);
  await app.caseStore.accounts.setDisabled('rev', true);
  expect((await signIn('REV', PASSWORD, '198.51.100.4')).statusCode).toBe(401);
  await app.caseStore.accounts.setDisabled('rev', false);
  const ok = await signIn('Rev', PASSWORD, '198.51.100.4');
  expect(ok.statusCode).toBe(200);
  const cookie = `hv_session=${ok.cookies.find((c) => c.name === 'hv_session')!.value}`;
  const out = await app.inject({
    method: 'DELETE',
    url: `${API}/session`,
    headers: { cookie },
    remoteAddress: '198.51.100.5',
  });
  expect(out.statusCode).toBe(204);
  // Signing out again (the session is gone) is no one's sign-out.
  expect(
    (await app.inject({ method: 'DELETE', url: `${API}/session`, headers: { cookie } })).statusCode,
  ).toBe(204);

  // The admin sees it through the audit API, filterable by action.
  const admin = await signIn('boss', PASSWORD);
  const adminCookie = `hv_session=${admin.cookies.find((c) => c.name === 'hv_session')!.value}`;
  const list = await app.inject({ url: `${API}/audit?limit=20`, headers: { cookie: adminCookie } });
  expect(list.statusCode).toBe(200);
  const entries = (list.json() as { entries: Record<string, unknown>[] }).entries.reverse();
  expect(entries.map((e) => [e.actor, e.action, e.targetId, e.detail, e.ip])).toEqual([
    ['anonymous', 'sign-in.failed', 'rev', 'wrong password', '203.0.113.9'],
    ['anonymous', 'sign-in.failed', 'nobody', 'no such account', '203.0.113.9'],
    ['anonymous', 'sign-in.failed', 'rev', 'account disabled', '198.51.100.4'],
    ['rev', 'sign-in', 'rev', '', '198.51.100.4'],
    ['rev', 'sign-out', 'rev', '', '198.51.100.5'],
    ['boss', 'sign-in', 'boss', '', '127.0.0.1'],
  ]);
  for (const e of entries) expect(e.at).toMatch(/^\d{4}-\d\d-\d\dT/);
  expect(list.body).not.toMatch(/guess|correct horse/);
  const failed = await app.inject({
    url: `${API}/audit?action=sign-in.failed`,
    headers: { cookie: adminCookie },
  });
  expect(failed.json()).toMatchObject({ total: 3 });
});
