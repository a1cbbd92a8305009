import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ModelError } from '../errors.js';
import { buildApp, type AppOptions } from './app.js';
import { pixelChunks } from './uploads.js';
import { EXTRA_REVIEW_LABELS } from '../api/index.js';
import { openStore, SCHEMA_VERSION, type SqliteCaseStore } from './store/index.js';
import {
  createVersion1DataDir,
  FAKE_CARD,
  FAKE_CLASSES,
  fakeVision,
  multipart,
  noisyJpeg,
  parseCsv,
  solidJpeg,
  solidPng,
  type UploadFile,
} from '../testing/server.js';

const API = '/api/v1';

interface CaseBody {
  id: string;
  file: string;
  label: string | null;
  confidence: number;
  probabilities: Record<string, number>;
  needsReview: boolean;
  reviewReasons: string[];
  heatmapUrl: string | null;
  imageUrl: string;
  cells: { label: string; box: { x: number }; reviewReasons: string[] }[];
  message?: string;
  createdAt: string;
  width: number;
  height: number;
  model: { name: string; version: string; tta: boolean };
  review: { label: string; reviewer: string; note: string; reviewedAt: string } | null;
  reviews?: { label: string; reviewer: string; note: string; reviewedAt: string }[];
}

let dataDir: string;
let app: FastifyInstance;

const ALL_VERSIONS = Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1);

async function start(opts: Partial<AppOptions> = {}): Promise<FastifyInstance> {
  app = await buildApp({
    auth: 'off',
    vision: fakeVision(),
    dataDir,
    webDir: join(dataDir, 'no-web'),
    ...opts,
  });
  return app;
}

async function predict(files: UploadFile[], target = app) {
  return target.inject({ method: 'POST', url: `${API}/predict`, ...(await multipart(files)) });
}

/** Upload temp files are removed in onResponse, which may run just after inject() resolves. */
async function tmpFilesAfterReply(): Promise<string[]> {
  const dir = join(dataDir, 'tmp');
  for (let i = 0; i < 50 && readdirSync(dir).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
  return readdirSync(dir);
}

function errorOf(res: { statusCode: number; json: () => unknown }) {
  return res.json() as { error: string; message: string };
}

beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'hv-server-'));
});

afterEach(async () => {
  await app?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

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
    const analyzeBatch = vision.analyzeBatch.bind(vision);
    vision.analyzeBatch = (inputs, options) => {
      asked.push(options?.tta);
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
    const stored = [byDefault, optedOut].map((r) => (r.json() as { cases: CaseBody[] }).cases[0]);
    expect(stored.map((c) => c.model.tta)).toEqual([true, false]);
    expect((await app.caseStore.get(stored[0].id))?.model.tta).toBe(true);
    const bad = await post('?tta=maybe');
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ error: 'invalid_request' });
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
        'get /api/v1/cases/{id}/heatmap.png',
        'get /api/v1/teaching',
        'get /api/v1/teaching/{id}/image',
        'post /api/v1/cases/{id}/cells/{index}/review',
        'get /api/v1/cases/{id}/cells/{index}/crop.png',
        'post /api/v1/specimens',
        'get /api/v1/specimens',
        'get /api/v1/specimens/{id}',
        'get /api/v1/specimens/{id}/cells.csv',
        'post /api/v1/specimens/{id}/sign',
        'get /api/v1/specimens/{id}/report.pdf',
        'post /api/v1/cases/{id}/restore',
        'get /api/v1/session',
        'post /api/v1/session',
        'delete /api/v1/session',
        'post /api/v1/setup',
        'get /api/v1/accounts',
        'post /api/v1/accounts',
        'patch /api/v1/accounts/{name}',
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

describe('POST /predict', () => {
  it('analyses every image, stores it as a case and returns the differential', async () => {
    await start();
    const red = await solidJpeg(64, 64, [210, 40, 40]); // whole-image neutrophil, no cells
    const grey = await solidPng(120, 80, [150, 150, 150]); // field: eosinophil cell + lymphocyte cell
    const black = await solidJpeg(64, 64, [0, 0, 0]); // no white cell
    const res = await predict([
      { name: 'red.jpg', bytes: red },
      { name: 'field.png', bytes: grey, type: 'image/png' },
      { name: 'empty.jpg', bytes: black },
    ]);
    expect(res.statusCode).toBe(200);
    const body = res.json() as {
      cases: CaseBody[];
      differential: { counts: Record<string, number>; percentages: Record<string, number>; total: number };
    };
    expect(body.cases.map((c) => [c.file, c.label])).toEqual([
      ['red.jpg', 'neutrophil'],
      ['field.png', 'eosinophil'],
      ['empty.jpg', null],
    ]);
    const [r, f, e] = body.cases;
    expect(r.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Set(body.cases.map((c) => c.id)).size).toBe(3);
    expect(r).toMatchObject({
      confidence: 0.9,
      needsReview: false,
      cells: [],
      width: 64,
      height: 64,
      model: { name: 'fake-wbc', version: '0.0.1-test' },
      review: null,
      imageUrl: `${API}/cases/${r.id}/image`,
      heatmapUrl: `${API}/cases/${r.id}/heatmap.png`,
    });
    expect(Object.keys(r.probabilities)).toEqual(FAKE_CLASSES);
    expect(Date.parse(r.createdAt)).toBeGreaterThan(Date.now() - 60_000);
    expect(f.needsReview).toBe(true); // grey → low confidence in the fake
    expect(f.reviewReasons).toEqual(['low_confidence']);
    expect(f.cells.map((c) => c.reviewReasons)).toEqual([['low_confidence'], []]);
    expect(r.reviewReasons).toEqual([]);
    expect(e.reviewReasons).toEqual(['no_cell']);
    expect(f.cells.map((c) => c.label)).toEqual(['eosinophil', 'lymphocyte']);
    expect(f.cells[1].box.x).toBe(50);
    expect(e).toMatchObject({ label: null, heatmapUrl: null, message: 'No white cell found in this image.' });

    // Cells of the field, plus the whole-image label once; the image with no cell counts nothing.
    expect(body.differential.counts).toEqual({ eosinophil: 1, lymphocyte: 1, monocyte: 0, neutrophil: 1 });
    expect(body.differential.total).toBe(3);
    expect(Object.keys(body.differential.percentages)).toEqual(FAKE_CLASSES);
    expect(body.differential.percentages.neutrophil).toBeCloseTo(100 / 3, 10);
    expect(Object.values(body.differential.percentages).reduce((a, b) => a + b, 0)).toBeCloseTo(100, 10);

    // Stored: retrievable, original bytes back with the sniffed content type.
    const img = await app.inject(r.imageUrl);
    expect(img.statusCode).toBe(200);
    expect(img.headers['content-type']).toBe('image/jpeg');
    expect(img.rawPayload.equals(red)).toBe(true);
    const png = await app.inject(`${API}/cases/${f.id}/image`);
    expect(png.headers['content-type']).toBe('image/png');
    expect(png.rawPayload.equals(grey)).toBe(true);
    const heat = await app.inject(r.heatmapUrl as string);
    expect(heat.statusCode).toBe(200);
    expect(heat.headers['content-type']).toBe('image/png');
    expect(heat.rawPayload.subarray(1, 4).toString()).toBe('PNG');
    const noHeat = await app.inject(`${API}/cases/${e.id}/heatmap.png`);
    expect(noHeat.statusCode).toBe(404);
    expect(errorOf(noHeat)).toEqual({
      error: 'not_found',
      message: expect.stringContaining('No white cell'),
    });

    const one = await app.inject(`${API}/cases/${f.id}`);
    expect(one.statusCode).toBe(200);
    expect(one.json()).toMatchObject({ ...f, reviews: [] });
    // Upload temp files are removed once the reply is sent.
    expect(await tmpFilesAfterReply()).toEqual([]);
  });

  it('reports a corrupt file inside a batch and processes the rest', async () => {
    await start();
    const good = await solidJpeg(64, 64, [40, 40, 210]);
    const res = await predict([
      { name: 'good.jpg', bytes: good },
      { name: 'notes.txt', bytes: Buffer.from('not an image at all'), type: 'text/plain' },
      { name: 'cut.jpg', bytes: (await noisyJpeg(64, 64)).subarray(0, 600) },
    ]);
    expect(res.statusCode).toBe(200);
    const body = res.json() as { cases: (CaseBody | { file: string; error: string; message: string })[] };
    expect(body.cases).toHaveLength(3);
    expect(body.cases[0]).toMatchObject({ file: 'good.jpg', label: 'monocyte' });
    expect(body.cases[1]).toEqual({
      file: 'notes.txt',
      error: 'unsupported_format',
      message: expect.any(String),
    });
    expect(body.cases[2]).toEqual({ file: 'cut.jpg', error: 'corrupt_image', message: expect.any(String) });
    expect(res.json().differential).toMatchObject({ total: 1, counts: { monocyte: 1 } });
    const list = await app.inject(`${API}/cases`);
    expect(list.json().total).toBe(1);
  });

  it('rejects every kind of bad upload with {error, message} and keeps serving', async () => {
    await start({ maxFiles: 3 });
    const ok = await solidJpeg(16, 16, [200, 0, 0]);
    const cases: [string, Promise<UploadFile[]>, number, string][] = [
      [
        'not an image',
        Promise.resolve([{ name: 'a.jpg', bytes: Buffer.from('hello') }]),
        415,
        'unsupported_format',
      ],
      ['0 bytes', Promise.resolve([{ name: 'a.jpg', bytes: Buffer.alloc(0) }]), 400, 'empty_file'],
      [
        'truncated JPEG',
        noisyJpeg(64, 64).then((b) => [{ name: 'a.jpg', bytes: b.subarray(0, Math.floor(b.length / 2)) }]),
        400,
        'corrupt_image',
      ],
      [
        '> 50 megapixels',
        solidPng(8000, 7000, [200, 0, 0]).then((b) => [{ name: 'huge.png', bytes: b, type: 'image/png' }]),
        413,
        'too_many_pixels',
      ],
      [
        'too many files',
        Promise.resolve([1, 2, 3, 4].map((i) => ({ name: `${i}.jpg`, bytes: ok }))),
        413,
        'too_many_files',
      ],
      ['wrong field', Promise.resolve([{ field: 'image', name: 'a.jpg', bytes: ok }]), 400, 'wrong_field'],
      ['no file', Promise.resolve([]), 400, 'no_images'],
      [
        'all files bad',
        Promise.resolve([
          { name: 'x.jpg', bytes: Buffer.from('x') },
          { name: 'y.jpg', bytes: Buffer.alloc(0) },
        ]),
        400,
        'no_valid_images',
      ],
    ];
    for (const [what, files, status, code] of cases) {
      const res = await predict(await files);
      expect({ what, status: res.statusCode, error: errorOf(res).error }).toEqual({
        what,
        status,
        error: code,
      });
      const body = errorOf(res);
      expect(Object.keys(body).sort()).toEqual(['error', 'message']);
      expect(body.message).not.toMatch(/\n\s+at /); // no stack trace
      if (code === 'wrong_field' || code === 'no_images') expect(body.message).toContain('"images"');
    }
    const json = await app.inject({ method: 'POST', url: `${API}/predict`, payload: { images: [] } });
    expect(json.statusCode).toBe(415);
    expect(errorOf(json).message).toContain('multipart/form-data');

    const noBoundary = await app.inject({
      method: 'POST',
      url: `${API}/predict`,
      headers: { 'content-type': 'multipart/form-data' },
      payload: 'abc',
    });
    expect(noBoundary.statusCode).toBe(400);
    expect(errorOf(noBoundary).error).toBe('invalid_multipart');

    expect((await app.inject(`${API}/cases`)).json().total).toBe(0);
    const after = await predict([{ name: 'fine.jpg', bytes: ok }]);
    expect(after.statusCode).toBe(200);
    expect((await app.inject(`${API}/health`)).statusCode).toBe(200);
    expect(await tmpFilesAfterReply()).toEqual([]);
  });

  it('limits the file size (small limit) and the default 50-file limit', async () => {
    await start({ maxFileBytes: 2000 });
    const res = await predict([{ name: 'big.jpg', bytes: await noisyJpeg(64, 64) }]);
    expect(res.statusCode).toBe(413);
    expect(errorOf(res)).toEqual({ error: 'file_too_large', message: expect.stringContaining('at most') });
    // In a batch, the oversize file is refused by name and the others are analysed.
    const mixed = await predict([
      { name: 'small.jpg', bytes: await solidJpeg(16, 16, [220, 30, 30]) },
      { name: 'big.jpg', bytes: await noisyJpeg(64, 64) },
    ]);
    expect(mixed.statusCode).toBe(200);
    const items = (mixed.json() as { cases: ({ file: string; error?: string; label?: string } & object)[] })
      .cases;
    expect(items.map((c) => [c.file, c.error ?? c.label])).toEqual([
      ['small.jpg', 'neutrophil'],
      ['big.jpg', 'file_too_large'],
    ]);
    expect(await tmpFilesAfterReply()).toEqual([]);
    await app.close();

    await start();
    const tiny = await solidJpeg(8, 8, [0, 200, 0]);
    const many = await predict(Array.from({ length: 51 }, (_, i) => ({ name: `${i}.jpg`, bytes: tiny })));
    expect(many.statusCode).toBe(413);
    expect(errorOf(many)).toEqual({ error: 'too_many_files', message: 'At most 50 images per request.' });
  });

  it('analyses in batches bounded by decoded pixels, keeping upload order', async () => {
    const vision = fakeVision();
    await start({ vision, batchPixels: 3200 });
    const colours: [number, number, number][] = [
      [220, 30, 30],
      [30, 220, 30],
      [30, 30, 220],
      [220, 30, 30],
    ];
    // 40×40 = 1600 px each: two per batch of 3200 px; the text file is refused by the header check.
    const files: UploadFile[] = await Promise.all(
      colours.map(async (c, i) => ({ name: `${i}.jpg`, bytes: await solidJpeg(40, 40, c) })),
    );
    files.splice(2, 0, { name: 'bad.jpg', bytes: Buffer.from('nope') });
    const res = await predict(files);
    expect(res.statusCode).toBe(200);
    const items = res.json().cases as { file: string; label?: string; error?: string }[];
    expect(items.map((c) => [c.file, c.label ?? c.error])).toEqual([
      ['0.jpg', 'neutrophil'],
      ['1.jpg', 'lymphocyte'],
      ['bad.jpg', 'unsupported_format'],
      ['2.jpg', 'monocyte'],
      ['3.jpg', 'neutrophil'],
    ]);
    expect(vision.batches).toEqual([2, 2]);
    expect(pixelChunks([{ pixels: 5 }, { pixels: 5 }, { pixels: 20 }, { pixels: 1 }], 10, 16)).toEqual([
      [{ pixels: 5 }, { pixels: 5 }],
      [{ pixels: 20 }],
      [{ pixels: 1 }],
    ]);
    expect(pixelChunks([{ pixels: 1 }, { pixels: 1 }, { pixels: 1 }], 100, 2).map((c) => c.length)).toEqual([
      2, 1,
    ]);
  });

  it('refuses a real file over 20 MB with the default limit', async () => {
    await start();
    const res = await predict([{ name: 'huge.jpg', bytes: Buffer.alloc(21 * 1024 * 1024, 7) }]);
    expect(res.statusCode).toBe(413);
    expect(errorOf(res)).toEqual({ error: 'file_too_large', message: 'Each image must be at most 20 MB.' });
    expect((await app.inject(`${API}/health`)).statusCode).toBe(200);
  });

  it('never leaks internal errors and stores nothing from a request that failed on the server', async () => {
    const vision = fakeVision();
    let calls = 0;
    const analyze = vision.analyze.bind(vision);
    vision.analyze = async (input, options) => {
      if (++calls === 2) throw new Error('ENOENT /secret/path/model.onnx');
      return analyze(input, options);
    };
    await start({ vision, batchPixels: 1 }); // one image per batch: the first is stored before the failure
    const img = await solidJpeg(16, 16, [200, 0, 0]);
    const res = await predict([
      { name: 'a.jpg', bytes: img },
      { name: 'b.jpg', bytes: img },
    ]);
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ error: 'internal_error', message: expect.any(String) });
    expect(res.body).not.toContain('secret');
    expect((await app.inject(`${API}/cases`)).json().total).toBe(0);
    expect(
      readdirSync(join(dataDir, 'images'), { recursive: true, withFileTypes: true }).filter((e) =>
        e.isFile(),
      ),
    ).toEqual([]);

    vision.analyze = async () => {
      throw new ModelError('The model file was changed after it was trained (checksum mismatch).');
    };
    const model = await predict([{ name: 'a.jpg', bytes: img }]);
    expect(model.statusCode).toBe(500);
    expect(model.json()).toEqual({ error: 'model_error', message: expect.stringContaining('checksum') });
  });
});

describe('cases', () => {
  async function seed(): Promise<CaseBody[]> {
    const files = [
      { name: 'n1.jpg', bytes: await solidJpeg(16, 16, [220, 30, 30]) },
      { name: 'm1.jpg', bytes: await solidJpeg(16, 16, [30, 30, 220]) },
      { name: 'n2.jpg', bytes: await solidJpeg(18, 16, [220, 30, 30]) },
    ];
    const out: CaseBody[] = [];
    // One request per image so createdAt differs and the order is testable.
    for (const f of files) out.push(((await predict([f])).json() as { cases: CaseBody[] }).cases[0]);
    return out;
  }

  it('lists newest first with label, reviewed, limit and offset', async () => {
    await start();
    const [n1, m1, n2] = await seed();
    const all = (await app.inject(`${API}/cases`)).json() as { cases: CaseBody[]; total: number };
    expect(all.total).toBe(3);
    expect(all.cases.map((c) => c.id)).toEqual([n2.id, m1.id, n1.id]);
    const neut = (await app.inject(`${API}/cases?label=neutrophil`)).json() as {
      cases: CaseBody[];
      total: number;
    };
    expect(neut.cases.map((c) => c.id)).toEqual([n2.id, n1.id]);
    const page = (await app.inject(`${API}/cases?limit=1&offset=1`)).json() as {
      cases: CaseBody[];
      total: number;
    };
    expect(page).toMatchObject({ total: 3, cases: [{ id: m1.id }] });

    await app.inject({
      method: 'PATCH',
      url: `${API}/cases/${m1.id}`,
      payload: { reviewLabel: 'monocyte', reviewer: 'ana' },
    });
    const reviewed = (await app.inject(`${API}/cases?reviewed=true`)).json() as {
      cases: CaseBody[];
      total: number;
    };
    expect(reviewed.cases.map((c) => c.id)).toEqual([m1.id]);
    expect(reviewed.cases[0].review?.label).toBe('monocyte');
    const unreviewed = (await app.inject(`${API}/cases?reviewed=false`)).json() as { total: number };
    expect(unreviewed.total).toBe(2);

    for (const q of ['limit=0', 'limit=201', 'offset=-1', 'reviewed=maybe', 'limit=abc']) {
      const res = await app.inject(`${API}/cases?${q}`);
      expect([q, res.statusCode, errorOf(res).error]).toEqual([q, 400, 'invalid_request']);
    }
  });

  it('finds cases by part of the file name and sorts them', async () => {
    await start();
    const [n1, m1, n2] = await seed();
    const grey = (
      (
        await predict([{ name: 'Smear_100%.jpg', bytes: await solidJpeg(16, 16, [128, 128, 128]) }])
      ).json() as {
        cases: CaseBody[];
      }
    ).cases[0];
    const list = async (q: string) =>
      ((await app.inject(`${API}/cases?${q}`)).json() as { cases: CaseBody[] }).cases.map((c) => c.id);
    expect(await list('file=N1')).toEqual([n1.id]); // any case
    expect(await list('file=.jpg')).toHaveLength(4);
    // LIKE's wildcards are taken literally.
    expect(await list(`file=${encodeURIComponent('_100%')}`)).toEqual([grey.id]);
    expect(await list('file=%25')).toEqual([grey.id]);
    expect(await list('sort=oldest')).toEqual([n1.id, m1.id, n2.id, grey.id]);
    expect((await list('sort=least-confident'))[0]).toBe(grey.id);
    expect((await app.inject(`${API}/cases?sort=random`)).statusCode).toBe(400);
    const csv = parseCsv((await app.inject(`${API}/cases.csv?file=m1&sort=oldest`)).body);
    expect(csv.slice(1).map((r) => r[0])).toEqual([m1.id]);
  });

  it('filters by needsReview, and refuses unknown query parameters instead of ignoring them', async () => {
    await start();
    const [n1] = await seed();
    // Grey: low confidence in the fake pipeline.
    const grey = (
      (await predict([{ name: 'g.jpg', bytes: await solidJpeg(16, 16, [128, 128, 128]) }])).json() as {
        cases: CaseBody[];
      }
    ).cases[0];
    expect(grey.needsReview).toBe(true);
    const flagged = (await app.inject(`${API}/cases?needsReview=true`)).json() as {
      cases: CaseBody[];
      total: number;
    };
    expect(flagged.cases.map((c) => c.id)).toEqual([grey.id]);
    const fine = (await app.inject(`${API}/cases?needsReview=false`)).json() as {
      cases: CaseBody[];
      total: number;
    };
    expect(fine.total).toBe(3);
    expect(fine.cases.map((c) => c.id)).toContain(n1.id);
    const csv = parseCsv((await app.inject(`${API}/cases.csv?needsReview=true`)).body);
    expect(csv.slice(1).map((r) => r[0])).toEqual([grey.id]);
    for (const url of [
      `${API}/cases?needsreview=true`,
      `${API}/cases?labels=x`,
      `${API}/cases.csv?order=label`,
    ]) {
      const res = await app.inject(url);
      expect([url, res.statusCode, errorOf(res).error]).toEqual([url, 400, 'invalid_request']);
      expect(errorOf(res).message).toMatch(/^Unknown query parameter '(needsreview|labels|order)'\.$/);
    }
  });

  it('keeps the review beside the prediction, with its history', async () => {
    await start();
    const [n1] = await seed();
    const url = `${API}/cases/${n1.id}`;
    const first = await app.inject({
      method: 'PATCH',
      url,
      payload: { reviewLabel: 'lymphocyte', reviewer: '  Dr Ana  ', note: 'small, round nucleus' },
    });
    expect(first.statusCode).toBe(200);
    const reviewed = first.json() as CaseBody;
    // The model's output is untouched.
    expect(reviewed).toMatchObject({
      label: 'neutrophil',
      confidence: n1.confidence,
      probabilities: n1.probabilities,
      review: { label: 'lymphocyte', reviewer: 'Dr Ana', note: 'small, round nucleus' },
    });
    expect(Date.parse(reviewed.review?.reviewedAt ?? '')).toBeGreaterThan(0);

    const second = await app.inject({
      method: 'PATCH',
      url,
      payload: { reviewLabel: EXTRA_REVIEW_LABELS[1], reviewer: 'Dr Bo' },
    });
    expect(second.statusCode).toBe(200);
    expect((second.json() as CaseBody).review).toMatchObject({
      label: 'not_a_white_cell',
      reviewer: 'Dr Bo',
      note: '',
    });
    const full = (await app.inject(url)).json() as CaseBody;
    expect(full.label).toBe('neutrophil');
    expect(full.reviews?.map((r) => [r.label, r.reviewer])).toEqual([
      ['lymphocyte', 'Dr Ana'],
      ['not_a_white_cell', 'Dr Bo'],
    ]);
    expect(full.review?.label).toBe('not_a_white_cell');

    const bad = await app.inject({
      method: 'PATCH',
      url,
      payload: { reviewLabel: 'basophil', reviewer: 'x' },
    });
    expect(bad.statusCode).toBe(400);
    expect(errorOf(bad).message).toContain('neutrophil');
    expect(errorOf(bad).message).toContain('other');
    for (const payload of [{ reviewLabel: 'monocyte' }, { reviewLabel: 'monocyte', reviewer: '   ' }, {}]) {
      const res = await app.inject({ method: 'PATCH', url, payload });
      expect(res.statusCode).toBe(400);
      expect(errorOf(res).error).toBe('invalid_request');
    }
    const unknown = await app.inject({
      method: 'PATCH',
      url: `${API}/cases/00000000-0000-4000-8000-000000000000`,
      payload: { reviewLabel: 'monocyte', reviewer: 'x' },
    });
    expect(unknown.statusCode).toBe(404);
  });

  it('answers 404 for an unknown id and 400 for a malformed one on every case route', async () => {
    await start();
    const unknown = '00000000-0000-4000-8000-000000000000';
    for (const [method, suffix] of [
      ['GET', ''],
      ['GET', '/image'],
      ['GET', '/heatmap.png'],
      ['DELETE', ''],
    ] as const) {
      const payload = method === 'DELETE' ? { reason: 'test' } : undefined;
      const res = await app.inject({ method, url: `${API}/cases/${unknown}${suffix}`, payload });
      expect(res.statusCode).toBe(404);
      expect(res.json()).toEqual({ error: 'not_found', message: `No case with id ${unknown}.` });
      const bad = await app.inject({ method, url: `${API}/cases/not-a-uuid${suffix}`, payload });
      expect(bad.statusCode).toBe(400);
      expect(errorOf(bad).error).toBe('invalid_id');
    }
  });

  it('deletes a case softly, with a reason: hidden, its bytes and reviews kept, restorable, audited', async () => {
    await start();
    const bytes = await solidJpeg(16, 16, [30, 220, 30]);
    const a = ((await predict([{ name: 'a.jpg', bytes }])).json() as { cases: CaseBody[] }).cases[0];
    const store = app.caseStore as SqliteCaseStore; // its blob paths
    const sha = (await store.get(a.id))?.imageSha256 as string;
    const url = `${API}/cases/${a.id}`;

    expect(errorOf(await app.inject({ method: 'DELETE', url })).error).toBe('invalid_request');
    const del = await app.inject({ method: 'DELETE', url, payload: { reason: 'wrong patient' } });
    expect(del.statusCode).toBe(204);
    expect(del.body).toBe('');
    expect((await app.inject(url)).statusCode).toBe(404);
    expect((await app.inject(`${url}/image`)).statusCode).toBe(404);
    expect((await app.inject(`${API}/cases`)).json()).toMatchObject({ total: 0 });
    expect(existsSync(store.imagePath(sha))).toBe(true);
    expect((await app.inject({ method: 'DELETE', url, payload: { reason: 'again' } })).statusCode).toBe(404);

    const restored = await app.inject({ method: 'POST', url: `${url}/restore` });
    expect(restored.statusCode).toBe(200);
    expect(restored.json()).toMatchObject({ id: a.id });
    expect((await app.inject(`${url}/image`)).rawPayload.equals(bytes)).toBe(true);
    expect(errorOf(await app.inject({ method: 'POST', url: `${url}/restore` })).error).toBe('not_deleted');

    const audit = (await app.inject(`${API}/audit?targetId=${a.id}`)).json() as {
      entries: { actor: string; action: string; detail: string }[];
    };
    expect(audit.entries.map((e) => [e.actor, e.action, e.detail])).toEqual([
      ['local', 'restore', ''],
      ['local', 'delete', 'wrong patient'],
      ['local', 'create', ''],
    ]);
  });

  it('exports CSV with proper quoting and one column per class', async () => {
    await start();
    const bytes = await solidJpeg(16, 16, [220, 30, 30]);
    const c = ((await predict([{ name: 'smear, "left".jpg', bytes }])).json() as { cases: CaseBody[] })
      .cases[0];
    const d = (
      (await predict([{ name: '=cmd.jpg', bytes: await solidJpeg(16, 16, [30, 30, 220]) }])).json() as {
        cases: CaseBody[];
      }
    ).cases[0];
    await app.inject({
      method: 'PATCH',
      url: `${API}/cases/${c.id}`,
      payload: { reviewLabel: 'monocyte', reviewer: 'Ana, MD', note: 'says "maybe"\nsecond line' },
    });
    const res = await app.inject(`${API}/cases.csv`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(res.headers['content-disposition']).toContain('attachment');
    const rows = parseCsv(res.body);
    expect(rows[0]).toEqual([
      'id',
      'file',
      'createdAt',
      'cell',
      'x',
      'y',
      'width',
      'height',
      'label',
      'confidence',
      'needsReview',
      'reviewReasons',
      'p_eosinophil',
      'p_lymphocyte',
      'p_monocyte',
      'p_neutrophil',
      'imageLabel',
      'imageNeedsReview',
      'reviewLabel',
      'reviewer',
      'reviewedAt',
      'note',
      'modelName',
      'modelVersion',
      'tta',
      'specimen',
    ]);
    expect(rows).toHaveLength(3);
    const byId = Object.fromEntries(
      rows.slice(1).map((r) => [r[0], Object.fromEntries(rows[0].map((h, i) => [h, r[i]]))]),
    );
    expect(byId[c.id]).toMatchObject({
      file: c.file,
      label: 'neutrophil',
      confidence: '0.9',
      needsReview: 'false',
      p_neutrophil: '0.9',
      reviewLabel: 'monocyte',
      reviewer: 'Ana, MD',
      note: 'says "maybe"\nsecond line',
      modelName: 'fake-wbc',
      tta: 'false',
    });
    expect(c.file).toContain(','); // the name really needed quoting
    expect(byId[d.id]).toMatchObject({ file: "'=cmd.jpg", label: 'monocyte', reviewLabel: '', reviewer: '' });
    const filtered = parseCsv((await app.inject(`${API}/cases.csv?reviewed=true`)).body);
    expect(filtered.slice(1).map((r) => r[0])).toEqual([c.id]);

    // A field with two cells is two rows: each cell's own box, label, flag and probabilities.
    const field = (
      (await predict([{ name: 'field.png', bytes: await solidPng(120, 80, [128, 128, 128]) }])).json() as {
        cases: CaseBody[];
      }
    ).cases[0];
    const all = parseCsv((await app.inject(`${API}/cases.csv`)).body);
    const cells = all
      .slice(1)
      .filter((r) => r[0] === field.id)
      .map((r) => Object.fromEntries(all[0].map((h, i) => [h, r[i]])));
    expect(
      cells.map((r) => [r.cell, r.x, r.label, r.needsReview, r.reviewReasons, r.imageNeedsReview]),
    ).toEqual([
      ['1', '0', 'eosinophil', 'true', 'low_confidence', 'true'],
      ['2', '50', 'lymphocyte', 'false', '', 'true'],
    ]);
    expect(Number(cells[1].p_lymphocyte)).toBeCloseTo(0.8, 6);
  });

  it('keeps cases and reviews across a restart', async () => {
    await start();
    const bytes = await solidJpeg(16, 16, [220, 30, 30]);
    const c = ((await predict([{ name: 'keep.jpg', bytes }])).json() as { cases: CaseBody[] }).cases[0];
    await app.inject({
      method: 'PATCH',
      url: `${API}/cases/${c.id}`,
      payload: { reviewLabel: 'eosinophil', reviewer: 'ana' },
    });
    await app.close();

    const store = await openStore({ dataDir });
    try {
      const again = await store.get(c.id);
      expect(again).toMatchObject({
        file: 'keep.jpg',
        label: 'neutrophil',
        review: { label: 'eosinophil', reviewer: 'ana' },
      });
      expect((await store.migrations()).map((m) => m.version)).toEqual(ALL_VERSIONS);
    } finally {
      await store.close();
    }

    await start();
    const res = await app.inject(`${API}/cases/${c.id}`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ id: c.id, label: 'neutrophil', review: { label: 'eosinophil' } });
    expect((await app.inject(`${API}/cases/${c.id}/image`)).rawPayload.equals(bytes)).toBe(true);
  });
});

describe('heat maps', () => {
  function heatmapFiles(): string[] {
    return readdirSync(join(dataDir, 'heatmaps'), { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => e.name);
  }

  it('are drawn on first request from the stored maps, stored, then read from the file', async () => {
    const vision = fakeVision();
    await start({ vision });
    const field = await solidPng(120, 80, [30, 200, 30]); // two cells
    const c = (
      (await predict([{ name: 'f.png', bytes: field, type: 'image/png' }])).json() as {
        cases: CaseBody[];
      }
    ).cases[0];
    expect(c.heatmapUrl).toBe(`${API}/cases/${c.id}/heatmap.png`);
    // Predict stored the maps only: nothing rendered, no file.
    expect(vision.rendered).toBe(0);
    expect(heatmapFiles()).toEqual([]);
    expect(await app.caseStore.get(c.id)).toMatchObject({ heatmapSha256: null, hasHeatmapData: true });

    const first = await app.inject(c.heatmapUrl as string);
    expect(first.statusCode).toBe(200);
    expect(first.headers['content-type']).toBe('image/png');
    expect(first.rawPayload.subarray(1, 4).toString()).toBe('PNG');
    expect(vision.rendered).toBe(1);
    // Drawn from the maps of that prediction, boxes included.
    expect(vision.renderedData[0].regions.map((r) => [r.label, r.box?.x, r.cam.length])).toEqual([
      ['lymphocyte', 0, 49],
      ['lymphocyte', 50, 49],
    ]);
    const sha = (await app.caseStore.get(c.id))?.heatmapSha256 as string;
    expect(heatmapFiles()).toEqual([sha]);

    const second = await app.inject(c.heatmapUrl as string);
    expect(second.rawPayload.equals(first.rawPayload)).toBe(true);
    expect(vision.rendered).toBe(1); // a file read
    expect((await app.inject(`${API}/cases/${c.id}`)).json()).toMatchObject({ heatmapUrl: c.heatmapUrl });

    // Still a file read after a restart.
    await app.close();
    const again = fakeVision();
    await start({ vision: again });
    expect((await app.inject(c.heatmapUrl as string)).rawPayload.equals(first.rawPayload)).toBe(true);
    expect(again.rendered).toBe(0);

    expect(await app.caseStore.delete(c.id)).toBe(true);
    expect(heatmapFiles()).toEqual([]);
  });

  it('serves concurrent first requests with one render and one stored file', async () => {
    const vision = fakeVision();
    await start({ vision });
    const c = (
      (await predict([{ name: 'r.jpg', bytes: await solidJpeg(40, 30, [220, 30, 30]) }])).json() as {
        cases: CaseBody[];
      }
    ).cases[0];
    const replies = await Promise.all(Array.from({ length: 6 }, () => app.inject(c.heatmapUrl as string)));
    expect(replies.map((r) => r.statusCode)).toEqual([200, 200, 200, 200, 200, 200]);
    for (const r of replies) expect(r.rawPayload.equals(replies[0].rawPayload)).toBe(true);
    expect(vision.rendered).toBe(1);
    expect(heatmapFiles()).toEqual([(await app.caseStore.get(c.id))?.heatmapSha256]);
    expect(readdirSync(join(dataDir, 'tmp'))).toEqual([]);
  });

  it('answers 500 when drawing fails, stores nothing, and draws again on the next request', async () => {
    const vision = fakeVision();
    const render = vision.renderHeatmap.bind(vision);
    let fail = true;
    vision.renderHeatmap = async (input, data) => {
      if (fail) throw new Error('sharp exploded at /secret/path');
      return render(input, data);
    };
    await start({ vision });
    const c = (
      (await predict([{ name: 'r.jpg', bytes: await solidJpeg(16, 16, [220, 30, 30]) }])).json() as {
        cases: CaseBody[];
      }
    ).cases[0];
    const failed = await app.inject(c.heatmapUrl as string);
    expect(failed.statusCode).toBe(500);
    expect(errorOf(failed).error).toBe('internal_error');
    expect(failed.body).not.toContain('secret');
    expect(heatmapFiles()).toEqual([]);
    fail = false;
    expect((await app.inject(c.heatmapUrl as string)).statusCode).toBe(200);
    expect(vision.rendered).toBe(1);
  });

  it('keeps serving the heat maps that a schema-1 data folder stored at predict time', async () => {
    const id = '22222222-2222-4222-8222-222222222222';
    const image = await solidJpeg(16, 16, [220, 30, 30]);
    const heatmapPng = await solidPng(4, 4, [1, 2, 3]);
    createVersion1DataDir(dataDir, { id, image, heatmapPng });
    const vision = fakeVision();
    await start({ vision });
    const listed = (await app.inject(`${API}/cases`)).json() as { cases: CaseBody[] };
    expect(listed.cases).toEqual([
      expect.objectContaining({ id, label: 'neutrophil', heatmapUrl: `${API}/cases/${id}/heatmap.png` }),
    ]);
    const heat = await app.inject(`${API}/cases/${id}/heatmap.png`);
    expect(heat.statusCode).toBe(200);
    expect(heat.rawPayload.equals(heatmapPng)).toBe(true);
    expect(vision.rendered).toBe(0);
    expect((await app.inject(`${API}/cases/${id}/image`)).rawPayload.equals(image)).toBe(true);
    expect((await app.caseStore.migrations()).map((m) => m.version)).toEqual(ALL_VERSIONS);
    // New cases in the migrated folder take the lazy path.
    const fresh = await predict([{ name: 'n.jpg', bytes: await solidJpeg(16, 16, [30, 30, 220]) }]);
    const freshCase = (fresh.json() as { cases: CaseBody[] }).cases[0];
    expect((await app.inject(freshCase.heatmapUrl as string)).statusCode).toBe(200);
    expect(vision.rendered).toBe(1);
  });
});
