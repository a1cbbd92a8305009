/** computeFeatures with the real backbone (inside the bundled model) on a few synthetic cells. */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PREPROCESSING_VERSION } from '../imaging/preprocess.js';
import { DEFAULT_MODEL_PATH } from '../model/classifier.js';
import { FeatureExtractor } from '../model/feature-extractor.js';
import type { Preprocessing } from '../model/inputs.js';
import { discJpeg, truncatedJpeg } from '../testing/cells.js';
import { cropAt } from './batches.js';
import { computeFeatures, type FeatureOptions, type FeatureSet } from './feature-cache.js';
import { prepareCrops } from './finetune/crops.js';

const hasModel = existsSync(DEFAULT_MODEL_PATH);
if (!hasModel) console.warn(`[skipped] feature cache: needs the bundled model ${DEFAULT_MODEL_PATH}`);

const prep: Preprocessing = {
  version: PREPROCESSING_VERSION,
  inputSize: 224,
  crop: 'cell',
  cropPadding: 0.1,
  resize: 'sharp bilinear, fit=fill, to 224×224 (the same call in training and serving)',
  normalization: '(pixel − 128) / 128 per RGB channel, NCHW',
};

/** Feature row r of a set. */
const row = (f: FeatureSet, r: number) => f.x.subarray(r * f.d, (r + 1) * f.d);

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe.skipIf(!hasModel)('computeFeatures', () => {
  let tmp: string;
  let extractor: FeatureExtractor;
  let images: { path: string }[];
  let first: FeatureSet;
  const VIEWS = 3;
  const opts = (cacheDir: string, extra: Partial<FeatureOptions> = {}): FeatureOptions => ({
    views: VIEWS,
    seed: 11,
    cacheDir,
    ...extra,
  });

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'hv-features-'));
    mkdirSync(join(tmp, 'img'));
    images = [];
    for (let i = 0; i < 4; i++) {
      const path = join(tmp, 'img', `cell-${i}.jpg`);
      writeFileSync(path, await discJpeg(i));
      images.push({ path });
    }
    extractor = await FeatureExtractor.load(DEFAULT_MODEL_PATH);
    first = await computeFeatures(images, extractor, prep, opts(join(tmp, 'cache-a')));
  });

  afterAll(async () => {
    await extractor?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('gives items × views rows of featureDim, view 0 first, computed on a cold cache', () => {
    expect(first.d).toBe(extractor.featureDim);
    expect(first.n).toBe(images.length * VIEWS);
    expect(first.x).toHaveLength(first.n * first.d);
    expect([...first.item]).toEqual([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]);
    expect([...first.view]).toEqual([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2]);
    expect(first.cached).toBe(0);
    expect(first.failed).toEqual([]);
    expect(first.x.every(Number.isFinite)).toBe(true);
    // Augmented views are not copies of the image, and different images give different features.
    expect(maxAbsDiff(row(first, 0), row(first, 1))).toBeGreaterThan(1e-3);
    expect(maxAbsDiff(row(first, 0), row(first, VIEWS))).toBeGreaterThan(1e-3);
  });

  it('a second run reads every item from the cache, bit for bit', async () => {
    const again = await computeFeatures(images, extractor, prep, opts(join(tmp, 'cache-a')));
    expect(again.cached).toBe(images.length);
    expect(again.n).toBe(first.n);
    expect(Buffer.from(again.x.buffer).equals(Buffer.from(first.x.buffer))).toBe(true);
  });

  it('recomputed on a cold cache: the same views (seeded by content), view 0 whatever the view count', async () => {
    const fresh = await computeFeatures(images, extractor, prep, opts(join(tmp, 'cache-b')));
    expect(fresh.cached).toBe(0);
    // Same images, same batches: ONNX Runtime on CPU gives the same bits.
    expect(maxAbsDiff(fresh.x, first.x)).toBe(0);
    const single = await computeFeatures(images, extractor, prep, opts(join(tmp, 'cache-a'), { views: 1 }));
    // The view count is part of the cache key: 1 view is not read from a 3-view entry.
    expect(single.cached).toBe(0);
    expect(single.n).toBe(images.length);
    for (let i = 0; i < images.length; i++)
      expect(maxAbsDiff(row(single, i), row(first, i * VIEWS))).toBeLessThan(1e-4);
  });

  it('crops the caller already holds give the same features as decoding the images (fine-tuning decodes once)', async () => {
    const { store, failed } = await prepareCrops(images, prep);
    expect(failed).toEqual([]);
    const fromCrops = await computeFeatures(
      images,
      extractor,
      prep,
      opts(join(tmp, 'cache-c'), { crops: (i) => (i === 3 ? null : cropAt(store, i)) }),
    );
    expect(fromCrops.cached).toBe(0);
    expect(fromCrops.failed).toEqual([{ index: 3, path: images[3].path, reason: 'no crop' }]);
    expect(maxAbsDiff(fromCrops.x, first.x.subarray(0, 3 * VIEWS * first.d))).toBe(0);
  });

  it('another seed changes the augmented views, not view 0', async () => {
    const other = await computeFeatures(
      images.slice(0, 1),
      extractor,
      prep,
      opts(join(tmp, 'cache-a'), { seed: 12 }),
    );
    expect(other.cached).toBe(0);
    expect(maxAbsDiff(row(other, 0), row(first, 0))).toBeLessThan(1e-4);
    expect(maxAbsDiff(row(other, 1), row(first, 1))).toBeGreaterThan(1e-3);
  });

  it('a renamed or copied file hits the cache (the key is its content)', async () => {
    const renamed = join(tmp, 'img', 'renamed.jpg');
    copyFileSync(images[2].path, renamed);
    const r = await computeFeatures([{ path: renamed }], extractor, prep, opts(join(tmp, 'cache-a')));
    expect(r.cached).toBe(1);
    expect(maxAbsDiff(r.x, first.x.subarray(2 * VIEWS * first.d, 3 * VIEWS * first.d))).toBe(0);
  });

  it('a corrupt image, an image without a cell and a missing file land in `failed`; the rest go on', async () => {
    const corrupt = join(tmp, 'img', 'corrupt.jpg');
    writeFileSync(corrupt, truncatedJpeg(await discJpeg(5)));
    const blank = join(tmp, 'img', 'blank.png');
    await sharp({ create: { width: 300, height: 300, channels: 3, background: { r: 235, g: 200, b: 205 } } })
      .png()
      .toFile(blank);
    const missing = join(tmp, 'img', 'missing.jpg');
    const items = [
      images[0],
      { path: corrupt },
      { path: blank },
      images[1],
      { path: missing },
      { path: join(tmp, 'img', 'cell-5.jpg') },
    ];
    writeFileSync(items[5].path, await discJpeg(5)); // not cached yet: computed in the same batch as the failures
    const progress: number[] = [];
    const r = await computeFeatures(
      items,
      extractor,
      prep,
      opts(join(tmp, 'cache-a'), { onProgress: (d) => progress.push(d) }),
    );

    const failed = Object.fromEntries(r.failed.map((f) => [f.index, f]));
    expect(Object.keys(failed).map(Number).sort()).toEqual([1, 2, 4]);
    expect(failed[1]).toMatchObject({ path: corrupt, reason: expect.stringMatching(/corrupt or truncated/) });
    expect(failed[2]).toMatchObject({ path: blank, reason: 'no white cell found' });
    expect(failed[4].reason).toMatch(/ENOENT|no such file/i);
    expect(r.cached).toBe(2);
    expect(r.n).toBe(3 * VIEWS);
    expect([...new Set(r.item)]).toEqual([0, 3, 5]);
    expect(maxAbsDiff(r.x.subarray(0, VIEWS * r.d), first.x.subarray(0, VIEWS * first.d))).toBe(0);
    expect(progress.at(-1)).toBe(items.length);
  });
});
