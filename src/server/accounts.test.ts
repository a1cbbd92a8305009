// The server with accounts on (the default): who may do what, sessions and tokens, first-start setup,
// clinics kept apart, the reviewer and signer being the account, and the audit trail.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildApp, type AppOptions } from './app.js';
import { createAccount, createApiToken } from './auth/users.js';
import type { Role } from '../api/constants.js';
import { OPEN_OPERATIONS, PASSWORD, signIn } from '../testing/accounts.js';
import { fakeVision, multipart, solidJpeg } from '../testing/server.js';

const API = '/api/v1';

let dataDir: string;
let app: FastifyInstance;

beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'hv-accounts-'));
});
afterEach(async () => {
  await app?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function start(opts: Partial<AppOptions> = {}) {
  app = await buildApp({ vision: fakeVision(), dataDir, webDir: join(dataDir, 'no-web'), ...opts });
  return app;
}

/** Creates the account and signs in through the API; the session cookie to send. */
const signedIn = (name: string, role: Role, clinic: string | null = null) => signIn(app, name, role, clinic);

const as = (cookie: string) => ({ headers: { cookie } });

async function upload(cookie: string, query = '') {
  const body = await multipart([{ name: 'a.jpg', bytes: await solidJpeg(40, 40, [200, 30, 30]) }]);
  const res = await app.inject({
    method: 'POST',
    url: `${API}/predict${query}`,
    payload: body.payload,
    headers: { ...body.headers, cookie },
  });
  expect(res.statusCode).toBe(200);
  return (res.json() as { cases: { id: string }[] }).cases[0].id;
}

describe('accounts on', () => {
  it('answers 401 to an anonymous request on every case, specimen, model, account and audit route', async () => {
    await start();
    const doc = (await app.inject(`${API}/openapi.json`)).json() as {
      paths: Record<string, Record<string, { operationId: string; security: unknown[] }>>;
    };
    const open: string[] = [];
    let refused = 0;
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        if (op.security.length === 0) {
          open.push(op.operationId);
          continue;
        }
        const url = path
          .replace('{id}', '00000000-0000-4000-8000-000000000000')
          .replace('{index}', '0')
          .replace('{name}', 'someone');
        const res = await app.inject({ method: method.toUpperCase() as 'GET', url });
        expect(res.statusCode, `${method} ${url}`).toBe(401);
        expect(res.json().error).toBe('unauthorized');
        refused++;
      }
    }
    expect(refused).toBeGreaterThanOrEqual(20);
    expect(open.sort()).toEqual(OPEN_OPERATIONS);
    // Off the API document too: the model file the browser downloads.
    expect((await app.inject('/models/model.int8.onnx')).statusCode).toBe(401);
    // A wrong token or cookie is no one.
    const bearer = await app.inject({ url: `${API}/cases`, headers: { authorization: 'Bearer hv_nope' } });
    expect(bearer.statusCode).toBe(401);
    expect(bearer.headers['www-authenticate']).toMatch(/^Bearer/);
    expect((await app.inject({ url: `${API}/cases`, ...as('hv_session=forged') })).statusCode).toBe(401);
  });

  it('creates the first admin once, through the one-time setup link', async () => {
    await start();
    const token = app.auth.setupToken;
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await app.inject(`${API}/session`)).json()).toEqual({
      auth: true,
      setupRequired: true,
      account: null,
    });
    const body = { token, name: 'ana', displayName: 'Dr Ana Lima', password: PASSWORD };
    const wrong = await app.inject({ method: 'POST', url: `${API}/setup`, payload: { ...body, token: 'x' } });
    expect(wrong.statusCode).toBe(403);
    const weak = await app.inject({
      method: 'POST',
      url: `${API}/setup`,
      payload: { ...body, password: 'short' },
    });
    expect(weak.statusCode).toBe(400);
    const res = await app.inject({ method: 'POST', url: `${API}/setup`, payload: body });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ name: 'ana', displayName: 'Dr Ana Lima', role: 'admin' });
    const cookie = res.cookies.find((c) => c.name === 'hv_session')!;
    const session = (await app.inject({ url: `${API}/session`, ...as(`hv_session=${cookie.value}`) })).json();
    expect(session).toMatchObject({
      auth: true,
      setupRequired: false,
      account: { name: 'ana', role: 'admin' },
    });
    const again = await app.inject({
      method: 'POST',
      url: `${API}/setup`,
      payload: { ...body, name: 'eve' },
    });
    expect(again.json().error).toBe('setup_done');
    expect((await app.caseStore.accounts.listUsers()).map((u) => u.name)).toEqual(['ana']);

    // A restart with an account: no setup link.
    await app.close();
    await start();
    expect(app.auth.setupToken).toBeNull();
  });

  it('sets a secure session cookie (HttpOnly, SameSite=Strict, Secure over TLS) and ends it on sign-out', async () => {
    await start({ trustProxy: true });
    await createAccount(app.caseStore.accounts, { name: 'rev', role: 'reviewer', password: PASSWORD });
    const bad = await app.inject({
      method: 'POST',
      url: `${API}/session`,
      payload: { name: 'rev', password: 'nope' },
    });
    expect(bad.statusCode).toBe(401);
    expect(
      (
        await app.inject({
          method: 'POST',
          url: `${API}/session`,
          payload: { name: 'nobody', password: 'x' },
        })
      ).statusCode,
    ).toBe(401);
    const plain = await app.inject({
      method: 'POST',
      url: `${API}/session`,
      payload: { name: 'REV', password: PASSWORD },
    });
    expect(plain.headers['set-cookie']).toMatch(/HttpOnly/);
    expect(plain.headers['set-cookie']).toMatch(/SameSite=Strict/);
    expect(plain.headers['set-cookie']).not.toMatch(/Secure/);
    const tls = await app.inject({
      method: 'POST',
      url: `${API}/session`,
      payload: { name: 'rev', password: PASSWORD },
      headers: { 'x-forwarded-proto': 'https' },
    });
    expect(tls.headers['set-cookie']).toMatch(/; Secure/);
    const cookie = `hv_session=${plain.cookies[0].value}`;
    expect((await app.inject({ url: `${API}/cases`, ...as(cookie) })).statusCode).toBe(200);
    const out = await app.inject({ method: 'DELETE', url: `${API}/session`, ...as(cookie) });
    expect(out.statusCode).toBe(204);
    expect((await app.inject({ url: `${API}/cases`, ...as(cookie) })).statusCode).toBe(401);
  });

  it('keeps clinics apart: a clinic account sees only its own clinic’s cases and specimens', async () => {
    await start();
    const north = await signedIn('north', 'clinic', 'North');
    const south = await signedIn('south', 'clinic', 'South');
    const reviewer = await signedIn('rev', 'reviewer');
    const create = await app.inject({
      method: 'POST',
      url: `${API}/specimens`,
      payload: { id: 'N-1' },
      ...as(north),
    });
    expect(create.json()).toMatchObject({ id: 'N-1', clinic: 'North' });
    const id = await upload(north, '?specimen=N-1');

    expect((await app.inject({ url: `${API}/cases/${id}`, ...as(north) })).json()).toMatchObject({
      clinic: 'North',
    });
    for (const url of [
      `/cases/${id}`,
      `/cases/${id}/image`,
      `/cases/${id}/cells/0/crop.png`,
      '/specimens/N-1',
      '/specimens/N-1/report.pdf',
      '/specimens/N-1/cells.csv',
    ]) {
      expect((await app.inject({ url: `${API}${url}`, ...as(south) })).statusCode, url).toBe(404);
    }
    expect((await app.inject({ url: `${API}/cases`, ...as(south) })).json()).toMatchObject({ total: 0 });
    expect((await app.inject({ url: `${API}/specimens`, ...as(south) })).json()).toMatchObject({ total: 0 });
    expect(
      (await app.inject({ url: `${API}/cases.csv`, ...as(south) })).body.split('\n').filter(Boolean),
    ).toHaveLength(1);
    // Nor can it upload into another clinic's specimen.
    const body = await multipart([{ name: 'b.jpg', bytes: await solidJpeg(40, 40, [200, 30, 30]) }]);
    const into = await app.inject({
      method: 'POST',
      url: `${API}/predict?specimen=N-1`,
      payload: body.payload,
      headers: { ...body.headers, cookie: south },
    });
    expect(into.statusCode).toBe(404);
    // A reviewer sees every clinic's.
    expect((await app.inject({ url: `${API}/cases`, ...as(reviewer) })).json()).toMatchObject({ total: 1 });
    // A clinic account neither reviews, signs, deletes nor reads the audit trail.
    const review = { reviewLabel: 'monocyte' };
    expect(
      (await app.inject({ method: 'PATCH', url: `${API}/cases/${id}`, payload: review, ...as(north) }))
        .statusCode,
    ).toBe(403);
    expect(
      (await app.inject({ method: 'POST', url: `${API}/specimens/N-1/sign`, payload: {}, ...as(north) }))
        .statusCode,
    ).toBe(403);
    expect(
      (
        await app.inject({
          method: 'DELETE',
          url: `${API}/cases/${id}`,
          payload: { reason: 'x' },
          ...as(north),
        })
      ).statusCode,
    ).toBe(403);
    expect((await app.inject({ url: `${API}/audit`, ...as(north) })).statusCode).toBe(403);
  });

  it('records the signed-in reviewer on reviews and sign-offs, never a typed name, and audits it all', async () => {
    await start();
    const clinic = await signedIn('north', 'clinic', 'North');
    const reviewer = await signedIn('rev', 'reviewer');
    const admin = await signedIn('boss', 'admin');
    await app.inject({ method: 'POST', url: `${API}/specimens`, payload: { id: 'S-7' }, ...as(clinic) });
    const id = await upload(clinic, '?specimen=S-7');

    const spoofed = await app.inject({
      method: 'POST',
      url: `${API}/cases/${id}/cells/0/review`,
      payload: { reviewLabel: 'monocyte', reviewer: 'Dr Ana (spoofed)' },
      ...as(reviewer),
    });
    expect(spoofed.json().error).toBe('reviewer_is_account');
    const review = await app.inject({
      method: 'POST',
      url: `${API}/cases/${id}/cells/0/review`,
      payload: { reviewLabel: 'monocyte' },
      ...as(reviewer),
    });
    expect(review.statusCode).toBe(200);
    expect(review.json().review).toMatchObject({ label: 'monocyte', reviewer: 'Dr rev' });
    const patched = await app.inject({
      method: 'PATCH',
      url: `${API}/cases/${id}`,
      payload: { reviewLabel: 'neutrophil' },
      ...as(reviewer),
    });
    expect(patched.json().review).toMatchObject({ reviewer: 'Dr rev' });

    const typedSigner = await app.inject({
      method: 'POST',
      url: `${API}/specimens/S-7/sign`,
      payload: { reviewer: 'Someone' },
      ...as(reviewer),
    });
    expect(typedSigner.json().error).toBe('reviewer_is_account');
    const sign = await app.inject({
      method: 'POST',
      url: `${API}/specimens/S-7/sign`,
      payload: {},
      ...as(reviewer),
    });
    expect(sign.statusCode).toBe(201);
    expect(sign.json()).toMatchObject({ revision: 1, reviewer: 'Dr rev' });
    expect(await app.caseStore.signoffs('S-7')).toMatchObject([{ reviewer: 'Dr rev' }]);

    expect((await app.inject({ url: `${API}/audit`, ...as(reviewer) })).statusCode).toBe(403);
    const audit = (await app.inject({ url: `${API}/audit`, ...as(admin) })).json() as {
      entries: { actor: string; action: string; targetType: string; targetId: string; detail: string }[];
    };
    const work = audit.entries.filter((e) => !e.action.startsWith('sign-'));
    expect(work.map((e) => `${e.actor} ${e.action} ${e.targetType} ${e.detail}`).reverse()).toEqual([
      'north create specimen ',
      'north create case specimen S-7',
      'rev review case cell 0: monocyte',
      'rev review case cell 0: neutrophil',
      'rev sign specimen revision 1',
    ]);
  });

  it('lets only an admin delete (softly, with a reason) and restore; the audit view shows it', async () => {
    await start();
    const reviewer = await signedIn('rev', 'reviewer');
    const admin = await signedIn('boss', 'admin');
    const id = await upload(reviewer);
    const del = (cookie: string) =>
      app.inject({
        method: 'DELETE',
        url: `${API}/cases/${id}`,
        payload: { reason: 'duplicate upload' },
        ...as(cookie),
      });
    expect((await del(reviewer)).statusCode).toBe(403);
    expect((await del(admin)).statusCode).toBe(204);
    expect((await app.inject({ url: `${API}/cases`, ...as(admin) })).json()).toMatchObject({ total: 0 });
    const audit = (await app.inject({ url: `${API}/audit?action=delete`, ...as(admin) })).json();
    expect(audit.entries).toMatchObject([{ actor: 'boss', targetId: id, detail: 'duplicate upload' }]);
    expect(
      (await app.inject({ method: 'POST', url: `${API}/cases/${id}/restore`, ...as(reviewer) })).statusCode,
    ).toBe(403);
    expect(
      (await app.inject({ method: 'POST', url: `${API}/cases/${id}/restore`, ...as(admin) })).statusCode,
    ).toBe(200);
    expect((await app.inject({ url: `${API}/cases`, ...as(reviewer) })).json()).toMatchObject({ total: 1 });
  });

  it('lets a clinic edit only its own specimens, and only an admin delete and restore one; all audited', async () => {
    await start();
    const north = await signedIn('north', 'clinic', 'North');
    const south = await signedIn('south', 'clinic', 'South');
    const reviewer = await signedIn('rev', 'reviewer');
    const admin = await signedIn('boss', 'admin');
    await app.inject({ method: 'POST', url: `${API}/specimens`, payload: { id: 'N-2' }, ...as(north) });
    const edit = (cookie: string) =>
      app.inject({
        method: 'PATCH',
        url: `${API}/specimens/N-2`,
        payload: { note: 'lipaemic' },
        ...as(cookie),
      });
    expect((await edit(south)).statusCode).toBe(404); // another clinic's: not found, not forbidden
    expect((await edit(north)).json()).toMatchObject({ id: 'N-2', note: 'lipaemic', clinic: 'North' });
    const del = (cookie: string) =>
      app.inject({
        method: 'DELETE',
        url: `${API}/specimens/N-2`,
        payload: { reason: 'duplicate' },
        ...as(cookie),
      });
    expect((await del(north)).statusCode).toBe(403);
    expect((await del(reviewer)).statusCode).toBe(403);
    expect((await del(admin)).statusCode).toBe(204);
    expect((await edit(north)).statusCode).toBe(404);
    const restore = (cookie: string) =>
      app.inject({ method: 'POST', url: `${API}/specimens/N-2/restore`, ...as(cookie) });
    expect((await restore(reviewer)).statusCode).toBe(403);
    expect((await restore(admin)).statusCode).toBe(200);
    const audit = (await app.inject({ url: `${API}/audit?targetType=specimen`, ...as(admin) })).json();
    expect(
      audit.entries.map((e: { actor: string; action: string; detail: string }) => [
        e.actor,
        e.action,
        e.detail,
      ]),
    ).toEqual([
      ['boss', 'restore', ''],
      ['boss', 'delete', 'duplicate'],
      ['north', 'update', 'note'],
      ['north', 'create', ''],
    ]);
  });

  it('accepts API tokens (Bearer) until revoked, and ends a disabled account’s sessions and tokens', async () => {
    await start();
    const admin = await signedIn('boss', 'admin');
    const cookie = await signedIn('rev', 'reviewer');
    const { token, record } = await createApiToken(app.caseStore.accounts, 'rev', 'nightly export');
    expect(token).toMatch(/^hv_/);
    const bearer = { headers: { authorization: `Bearer ${token}` } };
    expect((await app.inject({ url: `${API}/cases`, ...bearer })).statusCode).toBe(200);
    expect(await app.caseStore.accounts.revokeToken(record.id)).toBe(true);
    expect((await app.inject({ url: `${API}/cases`, ...bearer })).statusCode).toBe(401);

    const second = await createApiToken(app.caseStore.accounts, 'rev', 'script');
    const disable = await app.inject({
      method: 'PATCH',
      url: `${API}/accounts/rev`,
      payload: { disabled: true },
      ...as(admin),
    });
    expect(disable.json()).toMatchObject({ name: 'rev', disabled: true });
    expect((await app.inject({ url: `${API}/cases`, ...as(cookie) })).statusCode).toBe(401);
    expect(
      (await app.inject({ url: `${API}/cases`, headers: { authorization: `Bearer ${second.token}` } }))
        .statusCode,
    ).toBe(401);
    expect(
      (
        await app.inject({
          method: 'POST',
          url: `${API}/session`,
          payload: { name: 'rev', password: PASSWORD },
        })
      ).statusCode,
    ).toBe(401);
    // Admins manage accounts through the API too.
    const created = await app.inject({
      method: 'POST',
      url: `${API}/accounts`,
      payload: {
        name: 'west',
        displayName: 'West clinic',
        role: 'clinic',
        clinic: 'West',
        password: PASSWORD,
      },
      ...as(admin),
    });
    expect(created.statusCode).toBe(201);
    const list = (await app.inject({ url: `${API}/accounts`, ...as(admin) })).json();
    expect(list.accounts.map((a: { name: string }) => a.name)).toEqual(['boss', 'rev', 'west']);
    expect(JSON.stringify(list)).not.toMatch(/argon2|hash/i);
  });
});
