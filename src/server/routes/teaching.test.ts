import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { TEACHING_CLASSES } from '../../teaching/types.js';
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
