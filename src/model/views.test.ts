import { describe, expect, it } from 'vitest';
import { DIHEDRAL_VIEWS, expandViews, meanMapsOverViews, meanOverViews, writeViewRows } from './views.js';

/** One s×s plane per channel, every value distinct. */
const planes = (c: number, s: number, n = 1) => Float32Array.from({ length: n * c * s * s }, (_, i) => i + 1);

describe('expandViews', () => {
  // [[1, 2], [3, 4]] in each view: as is, x mirrored, y mirrored, both; then the four with a transpose.
  it('gives the 8 flips and turns of a square, view 0 the image itself', () => {
    const views = expandViews(Float32Array.from([1, 2, 3, 4]), 1, 1, 2, DIHEDRAL_VIEWS);
    const rows = Array.from({ length: 8 }, (_, t) => Array.from(views.subarray(t * 4, t * 4 + 4)));
    expect(rows).toEqual([
      [1, 2, 3, 4],
      [2, 1, 4, 3],
      [3, 4, 1, 2],
      [4, 3, 2, 1],
      [1, 3, 2, 4],
      [2, 4, 1, 3],
      [3, 1, 4, 2],
      [4, 2, 3, 1],
    ]);
  });

  it('writes any range of rows, across images, exactly as the whole expansion holds them', () => {
    const c = 3;
    const s = 6;
    const size = c * s * s;
    const x = planes(c, s, 3);
    const whole = expandViews(x, 3, c, s, DIHEDRAL_VIEWS);
    // Rows 5..14 span images 0 and 1, into an output at row 2.
    const out = new Float32Array(12 * size);
    writeViewRows(x, c, s, DIHEDRAL_VIEWS, 5, 10, out, 2);
    expect(Array.from(out.subarray(2 * size))).toEqual(Array.from(whole.subarray(5 * size, 15 * size)));
    expect(out.subarray(0, 2 * size).every((v) => v === 0)).toBe(true);
  });

  it('moves every channel alike and keeps images apart', () => {
    const c = 3;
    const s = 5;
    const x = planes(c, s, 2);
    const v = expandViews(x, 2, c, s, DIHEDRAL_VIEWS);
    const size = c * s * s;
    const keys = new Set<string>();
    for (let i = 0; i < 2; i++)
      for (let t = 0; t < 8; t++) {
        const view = v.subarray((i * 8 + t) * size, (i * 8 + t + 1) * size);
        // A permutation of its own image's values…
        expect(Array.from(view).sort((a, b) => a - b)).toEqual(
          Array.from(x.subarray(i * size, (i + 1) * size)).sort((a, b) => a - b),
        );
        // …that moves the pixels of the three channels together.
        for (let p = 0; p < s * s; p++) {
          expect(view[s * s + p] - view[p]).toBe(s * s);
          expect(view[2 * s * s + p] - view[p]).toBe(2 * s * s);
        }
        keys.add(Array.from(view).join(','));
      }
    expect(keys.size).toBe(16);
  });
});

describe('meanMapsOverViews', () => {
  it('undoes each view before averaging: the views of one map average back to that map', () => {
    const k = 4;
    const s = 7;
    const maps = planes(k, s, 3);
    const back = meanMapsOverViews(expandViews(maps, 3, k, s, 8), 3, k, s, 8);
    back.forEach((v, i) => expect(v).toBeCloseTo(maps[i], 4));
  });
});

describe('meanOverViews', () => {
  it('averages each image’s rows', () => {
    const logits = Float32Array.from([1, 2, 3, 4, 10, 20, 30, 40]);
    expect(Array.from(meanOverViews(logits, 2, 2, 2))).toEqual([2, 3, 20, 30]);
  });
});
