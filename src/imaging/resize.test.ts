import { describe, expect, it } from 'vitest';
import { resizeRgb } from './preprocess.js';
import { resizeLinear } from './resize.js';
import type { RgbImage } from './types.js';

/** A smooth, textured test image (stain-like blobs and a ramp), deterministic. */
function textured(w: number, h: number): RgbImage {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      data[i] = 128 + 100 * Math.sin(x / 5) * Math.cos(y / 7);
      data[i + 1] = (x * 255) / w;
      data[i + 2] = 128 + 120 * Math.sin((x + y) / 3);
    }
  return { width: w, height: h, data };
}

function compare(a: RgbImage, b: RgbImage): { max: number; share: number } {
  let max = 0;
  let off = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = Math.abs(a.data[i] - b.data[i]);
    if (d) off++;
    max = Math.max(max, d);
  }
  return { max, share: off / a.data.length };
}

describe('resizeLinear', () => {
  // Enlarging (most cell crops) matches on all but ~0.5 % of values; reducing, libvips' fixed point differs
  // by a level more often.
  it.each([
    [90, 90, 0.02],
    [141, 141, 0.02],
    [200, 160, 0.02],
    [300, 300, 0.2],
    [400, 250, 0.2],
  ])('gives sharp\u2019s linear-kernel pixels within one level (%i×%i → 224)', async (w, h, most) => {
    const img = textured(w, h);
    const ours = resizeLinear(img, 224, 224);
    const theirs = await resizeRgb(img, 224, 224);
    const { max, share } = compare(ours, theirs);
    expect(max).toBeLessThanOrEqual(1);
    expect(share).toBeLessThan(most);
  });

  it('returns the input when the size already fits and refuses bad sizes', () => {
    const img = textured(8, 8);
    expect(resizeLinear(img, 8, 8)).toBe(img);
    expect(() => resizeLinear(img, 0, 4)).toThrow(RangeError);
  });
});
