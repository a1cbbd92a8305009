import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { TEACHING_CLASSES } from '../../teaching/types.js';
import { FAKE_CLASSES, fakeVision } from '../../testing/server.js';
import { REPO_ROOT } from '../../testing/shared.js';
import type { CaseResult, TeachingSet } from '../../web/api.js';
import { answerClasses, buildPool, fetchReviewed, fetchTeaching } from '../../web/practice.js';
import { buildApp } from '../app.js';
import { teachingRoutes } from './teaching.js';

async function server(dir?: string) {
  const app = Fastify();
  await app.register(teachingRoutes, { prefix: '/api/v1', ...(dir ? { dir } : {}) });
  await app.ready();
  return app;
}

interface Listed {
  cells: { id: string; label: string; imageUrl: string; sourceFile: string }[];
  license: string;
  message?: string;
}

describe('teaching routes', async () => {
  // Nothing here touches a case store: this is what a fresh install with an empty data folder serves.
  const app = await server();
  afterAll(() => app.close());

  it('lists the 120 bundled cells of all 8 classes with their licence', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/teaching' });
    expect(res.statusCode).toBe(200);
    const body = res.json<Listed>();
    expect(body.cells).toHaveLength(120);
    expect(new Set(body.cells.map((c) => c.label))).toEqual(new Set(TEACHING_CLASSES));
    expect(body.license).toMatch(/CC BY 4\.0/);
    expect(body.message).toBeUndefined();
  });

  it('serves each listed image as a JPEG', async () => {
    const { cells } = (await app.inject({ method: 'GET', url: '/api/v1/teaching' })).json<Listed>();
    const res = await app.inject({ method: 'GET', url: cells[17].imageUrl });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('image/jpeg');
    expect((await sharp(res.rawPayload).metadata()).format).toBe('jpeg');
  });

  it('answers 404 for an unknown cell or a path trick', async () => {
    for (const id of ['basophil-99', '..%2F..%2Fpackage.json', 'manifest.json']) {
      const res = await app.inject({ method: 'GET', url: `/api/v1/teaching/${id}/image` });
      expect(res.statusCode, id).toBe(404);
      expect(res.json().error).toBe('not_found');
    }
  });

  it('still starts without a teaching set, and says why the list is empty', async () => {
    const empty = await server(mkdtempSync(join(tmpdir(), 'hv-no-teaching-')));
    const body = (await empty.inject({ method: 'GET', url: '/api/v1/teaching' })).json<Listed>();
    expect(body.cells).toEqual([]);
    expect(body.message).toMatch(/manifest\.json missing/);
    await empty.close();
  });
});

describe('practice on a fresh install', () => {
  it('has a full question pool from the teaching set alone, with an empty data folder', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'hv-fresh-'));
    const cases = await buildApp({
      auth: 'off',
      vision: fakeVision(),
      dataDir,
      webDir: join(dataDir, 'no-web'),
    });
    const teaching = await server();
    try {
      const get = async <T>(app: typeof cases, url: string) =>
        (await app.inject({ method: 'GET', url })).json<T>();
      // What the practice page does: reviewed cases from the case store, teaching cells from this plugin.
      const reviewed = await fetchReviewed((q) =>
        get<{ cases: CaseResult[]; total: number }>(
          cases,
          `/api/v1/cases?reviewed=true&limit=${q.limit}&offset=${q.offset}`,
        ),
      );
      expect(reviewed).toEqual([]);
      const taught = await fetchTeaching(() => get<TeachingSet>(teaching, '/api/v1/teaching'));
      const bundled = (
        JSON.parse(readFileSync(join(REPO_ROOT, 'models/model.json'), 'utf8')) as { classes: string[] }
      ).classes;
      const pool = buildPool(reviewed, answerClasses(bundled, [...taught, ...reviewed]), taught);
      expect(pool.cases).toHaveLength(120);
      expect(pool.teaching).toBe(120);
      // A model with fewer classes asks only the teaching cells it has an answer button for.
      expect(buildPool(reviewed, FAKE_CLASSES, taught).cases).toHaveLength(60);
      // Each question's image is served.
      const q = pool.cases[0];
      expect((await teaching.inject({ method: 'GET', url: q.imageUrl })).statusCode).toBe(200);
    } finally {
      await cases.close();
      await teaching.close();
    }
  });
});
