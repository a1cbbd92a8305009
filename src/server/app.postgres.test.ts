/** The whole server on PostgreSQL (AppOptions.databaseUrl): what a user does, end to end, on two replicas. */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Replicas } from '../testing/backends.js';
import { freshDatabase, hasPostgres, notePostgresSkip } from '../testing/postgres.js';
import { multipart, parseCsv, solidJpeg } from '../testing/server.js';
import type { AppOptions } from './app.js';
import { createAccount, createApiToken } from './auth/users.js';

notePostgresSkip('server on PostgreSQL');

const API = '/api/v1';

describe.skipIf(!hasPostgres)('the server on PostgreSQL', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  const replicas = new Replicas(() => db.url, 'hv-pg-app-');
  const dirs = replicas.dirs;
  /** A replica; accounts off unless `options` say otherwise ({} for the server's defaults, accounts on). */
  const replica = (options: Partial<AppOptions> = { auth: 'off' }) => replicas.start(options);

  beforeAll(async () => {
    db = await freshDatabase('app_pg');
  });
  afterAll(async () => {
    await replicas.close();
    await db?.drop();
    await replicas.remove();
  });

  it('predicts, lists, reviews, exports and deletes a case, any replica answering', async () => {
    const [a, b] = [await replica(), await replica()];
    const bytes = await solidJpeg(16, 16, [30, 220, 30]);
    const res = await a.inject({
      method: 'POST',
      url: `${API}/predict`,
      ...(await multipart([{ name: 'green.jpg', bytes }])),
    });
    expect(res.statusCode).toBe(200);
    const created = (res.json() as { cases: { id: string; label: string }[] }).cases[0];

    // Stored in the database, not the data folder: the other replica serves it, image and all.
    expect(readdirSync(dirs[0]).sort()).toEqual(['tmp']);
    expect(existsSync(join(dirs[0], 'hematovision.db'))).toBe(false);
    const list = (await b.inject(`${API}/cases`)).json() as { cases: { id: string }[]; total: number };
    expect(list.total).toBe(1);
    expect(list.cases[0].id).toBe(created.id);
    const image = await b.inject(`${API}/cases/${created.id}/image`);
    expect(image.statusCode).toBe(200);
    expect(image.rawPayload.equals(bytes)).toBe(true);
    const heatmap = await b.inject(`${API}/cases/${created.id}/heatmap.png`);
    expect(heatmap.statusCode).toBe(200);
    expect((await a.inject(`${API}/cases/${created.id}/heatmap.png`)).rawPayload).toEqual(heatmap.rawPayload);

    const review = await b.inject({
      method: 'PATCH',
      url: `${API}/cases/${created.id}`,
      payload: { reviewLabel: 'eosinophil', reviewer: 'ana', note: 'granules' },
    });
    expect(review.statusCode).toBe(200);
    const one = (await a.inject(`${API}/cases/${created.id}`)).json() as {
      review: { label: string; reviewer: string };
      reviews: unknown[];
    };
    expect(one.review).toMatchObject({ label: 'eosinophil', reviewer: 'ana' });
    expect(one.reviews).toHaveLength(1);

    const csv = parseCsv((await a.inject(`${API}/cases.csv?reviewed=true`)).body);
    expect(csv).toHaveLength(2); // header and the one cell
    expect(csv[1]).toContain(created.id);
    expect(csv[1]).toContain('eosinophil');

    const del = await b.inject({
      method: 'DELETE',
      url: `${API}/cases/${created.id}`,
      payload: { reason: 'duplicate' },
    });
    expect(del.statusCode).toBe(204);
    expect((await a.inject(`${API}/cases/${created.id}`)).statusCode).toBe(404);
    // Soft: the bytes stay, and the other replica restores it.
    expect((await a.inject({ method: 'POST', url: `${API}/cases/${created.id}/restore` })).statusCode).toBe(
      200,
    );
    expect((await b.inject(`${API}/cases/${created.id}/image`)).rawPayload.equals(bytes)).toBe(true);
    // A hard delete (the store's) takes its image and heat map with it.
    expect(await a.caseStore.delete(created.id)).toBe(true);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const { rows } = await client.query('SELECT count(*)::int AS n FROM blobs');
      expect(rows[0].n).toBe(0);
    } finally {
      await client.end();
    }
  });

  it('shares sessions and tokens between replicas: signed in on one, served by the other', async () => {
    const [a, b] = [await replica({}), await replica({})];
    await createAccount(a.caseStore.accounts, {
      name: 'rev',
      role: 'reviewer',
      password: 'a long passphrase',
    });
    const signIn = await a.inject({
      method: 'POST',
      url: `${API}/session`,
      payload: { name: 'rev', password: 'a long passphrase' },
    });
    const cookie = `hv_session=${signIn.cookies[0].value}`;
    expect((await b.inject({ url: `${API}/cases`, headers: { cookie } })).statusCode).toBe(200);
    const { token } = await createApiToken(b.caseStore.accounts, 'rev', 'script');
    expect(
      (await a.inject({ url: `${API}/cases`, headers: { authorization: `Bearer ${token}` } })).statusCode,
    ).toBe(200);
    await b.inject({ method: 'DELETE', url: `${API}/session`, headers: { cookie } });
    expect((await a.inject({ url: `${API}/cases`, headers: { cookie } })).statusCode).toBe(401);
  });
});
