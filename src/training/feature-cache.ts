import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { HematoError } from '../errors.js';
import { LOCATOR_VERSION } from '../imaging/locate.js';
import { PREPROCESSING_VERSION } from '../imaging/preprocess.js';
import type { RgbImage } from '../imaging/types.js';
import type { FeatureExtractor } from '../model/feature-extractor.js';
import { augmentedViews, prepareImage, writeInput, type Preprocessing } from '../model/inputs.js';
import { writeAtomic } from './files.js';

/** Bump when augmentation changes what a view holds. */
export const AUGMENTATION_VERSION = 1;

export interface FeatureOptions {
  /** Views per image: view 0 is the image itself, the rest are seeded augmentations. */
  views: number;
  seed: number;
  cacheDir: string;
  batchSize?: number;
  onProgress?: (done: number, total: number, cached: number) => void;
  /**
   * The network-sized crop of item `index` when the caller already holds it (null: that item gave none), so a
   * cache miss augments it instead of decoding and locating the image again.
   */
  crops?: (index: number) => RgbImage | null;
  /**
   * The cache key of item `index` in place of its file's sha256, for items that are no file (reviewed cells
   * held in memory, with `crops`): nothing is read from `path` then.
   */
  keys?: (index: number) => string;
}

/** Rows of features; `item[r]` is the index of the dataset item row r came from, `view[r]` its view. */
export interface FeatureSet {
  x: Float32Array;
  n: number;
  d: number;
  item: Int32Array;
  view: Int32Array;
  /** Items that gave no rows: unreadable, or (cell crops) no white cell found. */
  failed: { index: number; path: string; reason: string }[];
  cached: number;
}

/**
 * Backbone features for every item and view, read from the on-disk cache when present. The cache key is
 * the file's content hash plus everything that changes the numbers (backbone, preprocessing, views' seed),
 * so renaming a file, or rerunning, costs nothing.
 */
export async function computeFeatures(
  items: readonly { path: string }[],
  extractor: FeatureExtractor,
  prep: Preprocessing,
  options: FeatureOptions,
): Promise<FeatureSet> {
  const d = extractor.featureDim;
  const views = options.views;
  const dir = join(
    options.cacheDir,
    extractor.backboneId,
    `p${PREPROCESSING_VERSION}-${prep.crop === 'cell' ? `cell${LOCATOR_VERSION}` : 'whole'}-${prep.cropPadding}-${prep.inputSize}-a${AUGMENTATION_VERSION}-s${options.seed}`,
  );
  const rows: Float32Array[] = new Array(items.length);
  const failed: FeatureSet['failed'] = [];
  let cached = 0;

  const s = prep.inputSize;
  const chunk = Math.max(1, Math.floor((options.batchSize ?? 32) / views));

  type Pending = { index: number; file: string; inputs: Float32Array; count: number } | null;
  const prepareOne = async (index: number): Promise<Pending> => {
    const path = items[index].path;
    try {
      const bytes = options.keys ? null : await readFile(path);
      const hash = options.keys?.(index) ?? createHash('sha256').update(bytes!).digest('hex');
      const file = join(dir, hash.slice(0, 2), `${hash}-v${views}.f32`);
      if (existsSync(file)) {
        const buf = await readFile(file);
        rows[index] = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4).slice();
        cached++;
        return null;
      }
      const pixels = options.crops ? options.crops(index) : await primaryCrop(bytes!, prep);
      if (!pixels) {
        failed.push({ index, path, reason: options.crops ? 'no crop' : 'no white cell found' });
        return null;
      }
      const seed = (options.seed ^ parseInt(hash.slice(0, 8), 16)) >>> 0;
      const imgs = augmentedViews(pixels, views, seed);
      const inputs = new Float32Array(views * 3 * s * s);
      imgs.forEach((im, v) => writeInput(im, inputs, v));
      return { index, file, inputs, count: views };
    } catch (e) {
      failed.push({ index, path, reason: e instanceof HematoError ? e.message : String(e) });
      return null;
    }
  };
  const prepareChunk = (start: number) =>
    Promise.all(
      Array.from({ length: Math.min(chunk, items.length - start) }, (_, i) => prepareOne(start + i)),
    );

  let next = items.length > 0 ? prepareChunk(0) : Promise.resolve([] as Pending[]);
  for (let start = 0; start < items.length; start += chunk) {
    const cur = (await next).filter((p): p is NonNullable<Pending> => p !== null);
    // Overlap: decode and augment the next chunk while ONNX Runtime works on this one.
    next = start + chunk < items.length ? prepareChunk(start + chunk) : Promise.resolve([]);
    if (cur.length > 0) {
      const total = cur.reduce((a, p) => a + p.count, 0);
      const batch = new Float32Array(total * 3 * s * s);
      let off = 0;
      for (const p of cur) {
        batch.set(p.inputs, off);
        off += p.inputs.length;
      }
      const feats = await extractor.extract(batch, total, s);
      let r = 0;
      for (const p of cur) {
        const f = feats.slice(r * d, (r + p.count) * d);
        r += p.count;
        rows[p.index] = f;
        mkdirSync(dirname(p.file), { recursive: true });
        writeAtomic(p.file, new Uint8Array(f.buffer, f.byteOffset, f.byteLength));
      }
    }
    const done = Math.min(items.length, start + chunk);
    options.onProgress?.(done, items.length, cached);
  }

  let n = 0;
  for (const r of rows) if (r) n += r.length / d;
  const x = new Float32Array(n * d);
  const item = new Int32Array(n);
  const view = new Int32Array(n);
  let r = 0;
  rows.forEach((f, i) => {
    if (!f) return;
    const m = f.length / d;
    x.set(f, r * d);
    for (let v = 0; v < m; v++) {
      item[r + v] = i;
      view[r + v] = v;
    }
    r += m;
  });
  return { x, n, d, item, view, failed, cached };
}

/** The network-sized pixels of an image's most likely cell (or the whole image), null when none is found. */
async function primaryCrop(bytes: Buffer, prep: Preprocessing): Promise<RgbImage | null> {
  const prepared = await prepareImage(bytes, prep, { primaryOnly: true });
  return prepared.regions.length > 0 ? prepared.regions[0].pixels : null;
}
