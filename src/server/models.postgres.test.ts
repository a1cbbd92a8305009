/**
 * Model versions across replicas: a version activated on one replica is served by the other within its sync
 * interval, without a restart; cases on each record the sha256 of the model that made them; roll back undoes
 * activations one by one. Test doubles stand in for the network (fakeVision) and the model file (bytes whose
 * sha256 its card states).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, hasPostgres, notePostgresSkip } from '../testing/postgres.js';
import { expectRollbackUndoes, fakeModel, loadFake } from '../testing/model-versions.js';
import { multipart, solidJpeg } from '../testing/server.js';
import { buildApp } from './app.js';
import { SwappableVision } from './models/swappable.js';

notePostgresSkip('model versions across replicas');

const API = '/api/v1';

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

  it('rolls back as an undo: activate 2, activate 3, roll back → 2, roll back → 1, roll back → 409', async () => {
    const rb = await freshDatabase('models_pg_rollback');
    let app: FastifyInstance | undefined;
    try {
      const first = fakeModel(join(root, 'undo-first'), 'undo first model bytes');
      const vision = new SwappableVision(await loadFake(first.path));
      app = await buildApp({
        auth: 'off',
        vision,
        dataDir: join(root, 'undo'),
        databaseUrl: rb.url,
        webDir: join(root, 'no-web'),
        models: { path: first.path, load: loadFake },
      });
      await expectRollbackUndoes(app, join(root, 'undo-models'), () => vision.card.modelSha256);
    } finally {
      await app?.close();
      await rb.drop();
    }
  });
});
