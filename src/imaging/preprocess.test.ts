import { describe, expect, it } from 'vitest';
import { cropSquare, PREPROCESSING_VERSION, resizeLinear } from './preprocess.js';
import { makeImage, pixel } from './testing.js';

describe('resizeLinear, the network\u2019s resize', () => {
  it('returns the requested size and keeps flat colours flat', () => {
    const flat = makeImage(50, 30, () => [12, 200, 90]);
    const out = resizeLinear(flat, 224, 224);
    expect([out.width, out.height, out.data.length]).toEqual([224, 224, 224 * 224 * 3]);
    expect(pixel(out, 0, 0)).toEqual([12, 200, 90]);
    expect(pixel(out, 223, 223)).toEqual([12, 200, 90]);
  });

  it('stretches (fit fill) and returns the input when the size already matches', () => {
    const img = makeImage(40, 20, (x) => (x < 20 ? [255, 0, 0] : [0, 0, 255]));
    const out = resizeLinear(img, 10, 10);
    expect(pixel(out, 1, 5)[0]).toBeGreaterThan(240);
    expect(pixel(out, 8, 5)[2]).toBeGreaterThan(240);
    expect(resizeLinear(img, 40, 20)).toBe(img);
    expect(() => resizeLinear(img, 0, 10)).toThrow(RangeError);
  });
});

describe('PREPROCESSING_VERSION', () => {
  it('exports a preprocessing version for cache keys', () => {
    expect(PREPROCESSING_VERSION).toBe(2);
  });
});

describe('cropSquare', () => {
  // 6×4 image, pixel (x, y) = [x, y, 10x + y] so every source pixel is identifiable.
  const img = makeImage(6, 4, (x, y) => [x, y, 10 * x + y]);

  it('crops a square around the box centre with side max(w,h)·(1+2·padding)', () => {
    const out = cropSquare(img, { x: 2, y: 1, width: 2, height: 1 }, 0.5);
    // side = 2 × 2 = 4, centre (3, 1.5) → left 1, top 0 (rounded)
    expect([out.width, out.height]).toEqual([4, 4]);
    expect(pixel(out, 0, 0)).toEqual([1, 0, 10]);
    expect(pixel(out, 3, 3)).toEqual([4, 3, 43]);
  });

  it('fills outside parts by edge replication, not black', () => {
    const out = cropSquare(img, { x: 0, y: 0, width: 2, height: 2 }, 1);
    // side 6, centre (1, 1) → left -2, top -2
    expect([out.width, out.height]).toEqual([6, 6]);
    expect(pixel(out, 0, 0)).toEqual([0, 0, 0]); // replicated corner (0, 0)
    expect(pixel(out, 1, 5)).toEqual([0, 3, 3]); // x→0, y 3 (clamped from 3)
    expect(pixel(out, 5, 0)).toEqual([3, 0, 30]); // x 3, y clamped to 0
    expect(pixel(out, 2, 2)).toEqual([0, 0, 0]); // the real (0, 0)
    expect(pixel(out, 3, 3)).toEqual([1, 1, 11]);
    // A crop far bigger than the image: every border pixel is a real edge pixel.
    const big = cropSquare(img, { x: 2, y: 1, width: 2, height: 2 }, 3);
    for (let i = 0; i < big.width; i++) {
      const [x, y] = pixel(big, i, 0);
      expect(y).toBe(0);
      expect(x).toBeLessThanOrEqual(5);
      expect(pixel(big, i, big.height - 1)[1]).toBe(3);
    }
  });

  it('handles zero-size boxes and rejects nonsense', () => {
    expect(cropSquare(img, { x: 3, y: 2, width: 0, height: 0 }, 0.2).width).toBe(1);
    expect(() => cropSquare(img, { x: NaN, y: 0, width: 1, height: 1 }, 0)).toThrow(RangeError);
    expect(() => cropSquare(img, { x: 0, y: 0, width: 1, height: 1 }, -1)).toThrow(RangeError);
  });
});
