import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
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

/** What resizeLinear follows: libvips' linear kernel through sharp, stretching to the size. */
async function sharpLinear(img: RgbImage, width: number, height: number): Promise<RgbImage> {
  const { data, info } = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .resize(width, height, { fit: 'fill', kernel: 'linear', fastShrinkOnLoad: false })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data) };
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
  // Reducing follows libvips' fixed point exactly (1/64 mask offsets, 12-bit weights, 8-bit rounding
  // between the axes, a box pre-shrink from 4×).
  it.each([
    [225, 225],
    [300, 300],
    [360, 363],
    [320, 240],
    [448, 448],
    [1000, 900],
  ])('gives sharp\u2019s linear-kernel pixels exactly when reducing (%i×%i → 224)', async (w, h) => {
    const img = textured(w, h);
    expect(compare(resizeLinear(img, 224, 224), await sharpLinear(img, 224, 224))).toEqual({
      max: 0,
      share: 0,
    });
  });

  // Enlarging (most cell crops): libvips' 12-bit bilinear weights, but its source positions land on the other
  // side of a 1/4096 step now and then (ties then round the other way): one level on ~0.4 % of this steep
  // test pattern's values, ~0.1 % of cell photos'.
  it.each([
    [30, 30, 0.015],
    [90, 90, 0.005],
    [141, 141, 0.005],
    [223, 223, 0.005],
    // One axis enlarged, the other reduced (never a square cell crop): the other axis is blended half a
    // pixel over, as libvips does, and its exact halves round the other way more often.
    [300, 100, 0.12],
  ])('gives sharp\u2019s pixels within one level when enlarging (%i×%i → 224)', async (w, h, most) => {
    const img = textured(w, h);
    const { max, share } = compare(resizeLinear(img, 224, 224), await sharpLinear(img, 224, 224));
    expect(max).toBeLessThanOrEqual(1);
    expect(share).toBeLessThan(most);
  });

  it('returns the input when the size already fits and refuses bad sizes', () => {
    const img = textured(8, 8);
    expect(resizeLinear(img, 8, 8)).toBe(img);
    expect(() => resizeLinear(img, 0, 4)).toThrow(RangeError);
  });
});
