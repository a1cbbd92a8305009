/** POST /predict: analysis, storage and every kind of bad upload. */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ModelError } from '../../errors.js';
import { pixelChunks } from '../uploads.js';
import {
  API,
  app,
  type CaseBody,
  dataDir,
  errorOf,
  freshAppPerTest,
  predict,
  start,
  tmpFilesAfterReply,
} from '../../testing/app.js';
import {
  FAKE_CLASSES,
  fakeVision,
  noisyJpeg,
  solidJpeg,
  solidPng,
  type UploadFile,
} from '../../testing/server.js';

freshAppPerTest();

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
