import { describe, expect, it } from 'vitest';
import { augment } from '../imaging/augment.js';
import { createRng } from '../imaging/random.js';
import { writeInput } from '../model/inputs.js';
import {
  augmentSeed,
  createBatchMaker,
  createCropStore,
  cropAt,
  epochOrder,
  fillBatch,
  type CropStore,
} from './batches.js';

/** Crops with some structure (gradients and a blob), so augmentation visibly changes them. */
function store(count: number, size = 32): CropStore {
  const s = createCropStore(count, size);
  for (let i = 0; i < count; i++) {
    const d = cropAt(s, i).data;
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++) {
        const p = (y * size + x) * 3;
        const blob = (x - size / 2) ** 2 + (y - size / 3) ** 2 < 40 ? 1 : 0;
        d[p] = (x * 7 + i * 13) & 255;
        d[p + 1] = blob ? 60 : (y * 5 + i) & 255;
        d[p + 2] = blob ? 140 : 200;
      }
  }
  return s;
}

describe('epochOrder', () => {
  it('is a permutation that depends on seed and epoch only', () => {
    const idx = Array.from({ length: 50 }, (_, i) => i * 2);
    const a = epochOrder(idx, 42, 1);
    expect([...a].sort((x, y) => x - y)).toEqual(idx);
    expect(epochOrder(idx, 42, 1)).toEqual(a);
    expect(epochOrder(idx, 42, 2)).not.toEqual(a);
    expect(epochOrder(idx, 43, 1)).not.toEqual(a);
  });

  it('gives every (epoch, item) its own augmentation seed', () => {
    const seeds = new Set<number>();
    for (let e = 1; e <= 20; e++) for (let i = 0; i < 500; i++) seeds.add(augmentSeed(42, e, i));
    expect(seeds.size).toBe(20 * 500);
  });
});

describe('batch makers', () => {
  const s = store(6);
  const items = [3, 0, 5, 2];
  const seeds = items.map((i) => augmentSeed(1, 1, i));
  const pixels = 3 * 32 * 32;

  it('writes augment() of each crop, normalised, in batch order', () => {
    const out = new Float32Array(items.length * pixels);
    fillBatch(s, items, seeds, out);
    const want = new Float32Array(pixels);
    writeInput(augment(cropAt(s, 5), createRng(seeds[2])), want, 0);
    expect(out.subarray(2 * pixels, 3 * pixels)).toEqual(want);
    // Without seeds, the crop as it is.
    fillBatch(s, [5], null, want);
    writeInput(cropAt(s, 5), out, 0);
    expect(out.subarray(0, pixels)).toEqual(want);
  });

  it('the helper thread builds exactly what the inline maker builds, in request order', async () => {
    const inline = createBatchMaker(s, { workers: 0 });
    const threaded = createBatchMaker(s, { workers: 1 });
    expect(threaded.threaded).toBe(true);
    try {
      const requests = [items, [1, 4], items.slice(1)];
      const a = await Promise.all(
        requests.map((r) =>
          inline.make(
            r,
            r.map((i) => augmentSeed(9, 2, i)),
          ),
        ),
      );
      const b = await Promise.all(
        requests.map((r) =>
          threaded.make(
            r,
            r.map((i) => augmentSeed(9, 2, i)),
          ),
        ),
      );
      expect(b.map((x) => x.length)).toEqual(requests.map((r) => r.length * pixels));
      b.forEach((x, j) => expect(x).toEqual(a[j]));
      // Augmentation really happened: the batch differs from the plain crops.
      expect(await inline.make(items, null)).not.toEqual(a[0]);
    } finally {
      await inline.close();
      await threaded.close();
    }
  });
});
