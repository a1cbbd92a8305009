/**
 * Model versions across replicas: a version activated on one replica is served by the other within its sync
 * interval, without a restart; cases on each record the sha256 of the model that made them. Test doubles
 * stand in for the network (fakeVision) and the model file (bytes whose sha256 its card states).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelCard } from '../model/types.js';
import { freshDatabase, hasPostgres, notePostgresSkip } from '../testing/postgres.js';
import { FAKE_CARD, fakeVision, multipart, solidJpeg } from '../testing/server.js';
import { buildApp } from './app.js';

notePostgresSkip('model versions across replicas');

const API = '/api/v1';

/** A folder with model.onnx (some bytes) and its card. */
function fakeModel(dir: string, bytes: string): { path: string; card: ModelCard } {
  mkdirSync(dir, { recursive: true });
  const onnx = Buffer.from(bytes);
  const card = { ...FAKE_CARD, modelSha256: createHash('sha256').update(onnx).digest('hex') };
  writeFileSync(join(dir, 'model.onnx'), onnx);
  writeFileSync(join(dir, 'model.json'), JSON.stringify(card));
  return { path: join(dir, 'model.onnx'), card };
}

/** Loads a fake model file as the server would: its card from beside it. */
async function loadFake(path: string) {
  const v = fakeVision();
  Object.assign(v, { card: JSON.parse(readFileSync(path.replace(/\.onnx$/, '.json'), 'utf8')) as ModelCard });
  return v;
}

describe.skipIf(!hasPostgres)('model versions on two replicas', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  const root = mkdtempSync(join(tmpdir(), 'hv-models-pg-'));
  const apps: FastifyInstance[] = [];

  beforeAll(async () => {
    db = await freshDatabase('models_pg');
  });
  afterAll(async () => {
    for (const a of apps) await a.close();
    await db?.drop();
    rmSync(root, { recursive: true, force: true });
  });

  it('follows an activation made on the other replica, and each case records its model', async () => {
    const first = fakeModel(join(root, 'first'), 'first model bytes');
    const replica = async (name: string) => {
      const app = await buildApp({
        auth: 'off',
        vision: await loadFake(first.path),
        dataDir: join(root, name),
        databaseUrl: db.url,
        webDir: join(root, 'no-web'),
        models: { path: first.path, load: loadFake },
        jobs: { modelSyncSeconds: 0.2 },
      });
      apps.push(app);
      return app;
    };
    const [a, b] = [await replica('a'), await replica('b')];
    // Both started with the same model: one version 1.
    const list = (await b.inject(`${API}/admin/models`)).json() as { versions: unknown[]; active: number };
    expect(list).toMatchObject({ active: 1, versions: [expect.objectContaining({ version: 1 })] });

    // A second version (as an adaptation would store it), activated on A.
    const second = fakeModel(join(root, 'second'), 'second model bytes');
    const stored = await a.caseStore.models.add({
      sha256: second.card.modelSha256,
      name: 'fake-wbc',
      card: second.card,
      onnx: readFileSync(second.path),
      source: 'adaptation',
    });
    expect(stored.version).toBe(2);
    expect((await a.inject({ method: 'POST', url: `${API}/admin/models/2/activate` })).statusCode).toBe(200);

    const predictOn = async (app: FastifyInstance) => {
      const res = await app.inject({
        method: 'POST',
        url: `${API}/predict`,
        ...(await multipart([{ name: 'x.jpg', bytes: await solidJpeg(16, 16, [200, 30, 30]) }])),
      });
      return (res.json() as { cases: { model: { sha256: string } }[] }).cases[0].model.sha256;
    };
    expect(await predictOn(a)).toBe(second.card.modelSha256);
    let seen = '';
    for (let t = Date.now(); Date.now() - t < 5000;) {
      seen = await predictOn(b);
      if (seen === second.card.modelSha256) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(seen).toBe(second.card.modelSha256); // B followed without a restart
    // B wrote version 2 out of the database into its own data folder to load it.
    expect(readFileSync(join(root, 'b', 'models', second.card.modelSha256, 'model.onnx')).toString()).toBe(
      'second model bytes',
    );
    expect((await b.inject({ method: 'POST', url: `${API}/admin/models/rollback` })).statusCode).toBe(200);
    expect(await predictOn(b)).toBe(first.card.modelSha256);
  });
});
