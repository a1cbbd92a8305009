/** The service routes (health, model card, API docs and OpenAPI), the security headers and the web UI's mount. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../app.js';
import { BULK_IMAGES } from '../uploads.js';
import { API, app, type CaseBody, dataDir, errorOf, freshAppPerTest, start } from '../../testing/app.js';
import { FAKE_CARD, FAKE_CLASSES, fakeVision, multipart, solidJpeg } from '../../testing/server.js';

freshAppPerTest();

describe('service routes', () => {
  it('reports health and the model card', async () => {
    await start();
    const health = await app.inject(`${API}/health`);
    expect(health.statusCode).toBe(200);
    expect(health.json()).toEqual({
      status: 'ok',
      model: { name: 'fake-wbc', version: '0.0.1-test', classes: FAKE_CLASSES, tta: false },
    });
    const model = await app.inject(`${API}/model`);
    expect(model.statusCode).toBe(200);
    expect(model.json()).toEqual({
      ...FAKE_CARD,
      inUse: { tta: false, reviewThreshold: FAKE_CARD.reviewThreshold },
    });
  });

  it('TTA: per server (TTA=1) or per request (?tta=); stored on each case; /model says what is in force', async () => {
    const plain = fakeVision();
    await expect(buildApp({ auth: 'off', vision: plain, dataDir, tta: true })).rejects.toMatchObject({
      code: 'bad_config',
    });

    const vision = fakeVision();
    const block = {
      views: 8,
      transforms: 'test',
      temperature: 1.3,
      reviewThreshold: 0.61,
      validation: FAKE_CARD.validation,
    };
    Object.assign(vision, { hasTta: true, card: { ...FAKE_CARD, testTimeAugmentation: block } });
    const asked: (boolean | undefined)[] = [];
    const priorities: (string | undefined)[] = [];
    const analyzeBatch = vision.analyzeBatch.bind(vision);
    vision.analyzeBatch = (inputs, options) => {
      asked.push(options?.tta);
      priorities.push(options?.priority);
      return analyzeBatch(inputs, options);
    };
    await start({ vision, tta: true });
    expect((await app.inject(`${API}/model`)).json()).toMatchObject({
      inUse: { tta: true, reviewThreshold: 0.61 },
    });
    const bytes = await solidJpeg(64, 64, [40, 40, 210]);
    const post = async (query: string) =>
      app.inject({
        method: 'POST',
        url: `${API}/predict${query}`,
        ...(await multipart([{ name: 'a.jpg', bytes }])),
      });
    const byDefault = await post('');
    const optedOut = await post('?tta=false');
    expect([byDefault.statusCode, optedOut.statusCode]).toEqual([200, 200]);
    expect(asked).toEqual([true, false]);
    // Test-time augmentation is bulk work: it waits for other clients' single images (run-queue.ts).
    expect(priorities).toEqual(['bulk', 'interactive']);
    const stored = [byDefault, optedOut].map((r) => (r.json() as { cases: CaseBody[] }).cases[0]);
    expect(stored.map((c) => c.model.tta)).toEqual([true, false]);
    expect((await app.caseStore.get(stored[0].id))?.model.tta).toBe(true);
    const bad = await post('?tta=maybe');
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ error: 'invalid_request' });
  });

  it('analyses an upload of more than BULK_IMAGES images as bulk, a few as interactive, holding bulk work back', async () => {
    const vision = fakeVision();
    const priorities: (string | undefined)[] = [];
    // Whether the request held bulk work back while it was analysed, and whether it let go by its reply.
    let holding = 0;
    const heldDuringAnalysis: boolean[] = [];
    vision.interactive = () => {
      holding++;
      let ended = false;
      return () => {
        if (!ended) holding--;
        ended = true;
      };
    };
    const analyzeBatch = vision.analyzeBatch.bind(vision);
    vision.analyzeBatch = (inputs, options) => {
      priorities.push(options?.priority);
      heldDuringAnalysis.push(holding > 0);
      return analyzeBatch(inputs, options);
    };
    await start({ vision });
    const bytes = await solidJpeg(64, 64, [40, 40, 210]);
    for (const n of [1, BULK_IMAGES, BULK_IMAGES + 1]) {
      const res = await app.inject({
        method: 'POST',
        url: `${API}/predict`,
        ...(await multipart(Array.from({ length: n }, (_, i) => ({ name: `${i}.jpg`, bytes })))),
      });
      expect(res.statusCode).toBe(200);
    }
    expect(priorities).toEqual(['interactive', 'interactive', 'bulk']);
    expect(heldDuringAnalysis).toEqual([true, true, false]);
    expect(holding).toBe(0);
  });

  it('?tta=true on a model not calibrated for it: 400 no_tta, nothing stored', async () => {
    await start();
    const res = await app.inject({
      method: 'POST',
      url: `${API}/predict?tta=true`,
      ...(await multipart([{ name: 'a.jpg', bytes: await solidJpeg(64, 64, [40, 40, 210]) }])),
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'no_tta' });
    expect((await app.caseStore.list({ limit: 10, offset: 0 })).total).toBe(0);
  });

  it('serves browsable API docs built from the same OpenAPI document', async () => {
    await start();
    const page = await app.inject(`${API}/docs/`);
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toContain('text/html');
    expect(page.body).toContain('swagger-initializer.js');
    const spec = (await app.inject(`${API}/docs/json`)).json() as { paths: Record<string, unknown> };
    expect(Object.keys(spec.paths)).toContain(`${API}/predict`);
    // The page loads only its own files: the app's CSP (script-src 'self') holds.
    expect(page.body).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>\s*\S/);
  });

  it('serves an OpenAPI 3 document listing every route', async () => {
    await start();
    const res = await app.inject(`${API}/openapi.json`);
    expect(res.statusCode).toBe(200);
    const doc = res.json() as {
      openapi: string;
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
      components: { schemas: Record<string, unknown> };
    };
    expect(doc.openapi).toMatch(/^3\./);
    const routes = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m} ${p}`));
    expect(routes.sort()).toEqual(
      [
        'get /api/v1/health',
        'get /api/v1/ready',
        'get /api/v1/model',
        'get /api/v1/openapi.json',
        'post /api/v1/predict',
        'get /api/v1/cases',
        'get /api/v1/cases.csv',
        'get /api/v1/cases/{id}',
        'patch /api/v1/cases/{id}',
        'delete /api/v1/cases/{id}',
        'get /api/v1/cases/{id}/image',
        'get /api/v1/exports/{id}',
        'get /api/v1/exports/{id}/file',
        'get /api/v1/cases/{id}/heatmap.png',
        'get /api/v1/teaching',
        'get /api/v1/teaching/{id}/image',
        'post /api/v1/cases/{id}/cells/{index}/review',
        'get /api/v1/cases/{id}/cells/{index}/crop.png',
        'post /api/v1/specimens',
        'get /api/v1/specimens',
        'get /api/v1/specimens/{id}',
        'patch /api/v1/specimens/{id}',
        'delete /api/v1/specimens/{id}',
        'post /api/v1/specimens/{id}/restore',
        'get /api/v1/specimens/{id}/cells.csv',
        'post /api/v1/specimens/{id}/sign',
        'get /api/v1/specimens/{id}/report.pdf',
        'post /api/v1/cases/{id}/restore',
        'post /api/v1/exports/cases',
        'post /api/v1/exports/specimens/{id}/report',
        'get /api/v1/session',
        'post /api/v1/session',
        'delete /api/v1/session',
        'post /api/v1/setup',
        'get /api/v1/accounts',
        'post /api/v1/accounts',
        'patch /api/v1/accounts/{name}',
        'put /api/v1/account/password',
        'get /api/v1/audit',
      ].sort(),
    );
    expect(Object.keys(doc.components.schemas)).toEqual(
      expect.arrayContaining(['Error', 'Case', 'Cell', 'Review', 'FileError', 'Differential']),
    );
    expect(doc.paths['/api/v1/predict'].post).toMatchObject({
      requestBody: {
        content: { 'multipart/form-data': { schema: { properties: { images: { type: 'array' } } } } },
      },
    });
    expect(doc.paths['/api/v1/cases/{id}'].get.responses).toHaveProperty('4XX');
  });

  it('sends security headers and no CORS headers', async () => {
    await start();
    const res = await app.inject({ url: `${API}/health`, headers: { origin: 'https://evil.example' } });
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("img-src 'self' blob: data:");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-frame-options']).toBe('SAMEORIGIN');
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    const preflight = await app.inject({
      method: 'OPTIONS',
      url: `${API}/predict`,
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    expect(preflight.statusCode).toBe(404);
    expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
    // Errors carry the same headers.
    const missing = await app.inject(`${API}/nothing`);
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toEqual({
      error: 'not_found',
      message: expect.stringContaining('/api/v1/nothing'),
    });
    expect(missing.headers['x-content-type-options']).toBe('nosniff');
  });

  it('says how to build the UI when dist/web is missing, and serves it when present', async () => {
    await start();
    const page = await app.inject('/');
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.body).toContain('npm run build:web');
    await app.close();

    const webDir = join(dataDir, 'web');
    mkdirSync(join(webDir, 'assets'), { recursive: true });
    writeFileSync(
      join(webDir, 'index.html'),
      '<!doctype html><title>UI</title><script src="./assets/app.js"></script>',
    );
    writeFileSync(join(webDir, 'assets', 'app.js'), 'console.log(1)');
    await start({ webDir });
    const index = await app.inject('/');
    expect(index.statusCode).toBe(200);
    expect(index.body).toContain('<title>UI</title>');
    expect(index.headers['content-security-policy']).toContain("script-src 'self'");
    const js = await app.inject('/assets/app.js');
    expect(js.statusCode).toBe(200);
    expect(js.headers['content-type']).toMatch(/javascript/);
    expect((await app.inject(`${API}/health`)).statusCode).toBe(200);
    const missing = await app.inject('/assets/none.js');
    expect(missing.statusCode).toBe(404);
    expect(errorOf(missing).error).toBe('not_found');
  });
});
