import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeImage } from './decode.js';
import { damageOf, flatFraction } from './quality.js';
import type { RgbImage } from './types.js';

function image(
  width: number,
  height: number,
  pixel: (x: number, y: number) => [number, number, number],
): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set(pixel(x, y), (y * width + x) * 3);
  return { width, height, data };
}
const noise = (x: number, y: number): [number, number, number] => {
  const v = (x * 7919 + y * 104729) % 97;
  return [100 + v, 60 + v, 120 + v];
};

describe('flatFraction', () => {
  it('is 1 for one colour, 0 for texture everywhere, and the flat share in between', () => {
    expect(flatFraction(image(64, 64, () => [240, 200, 210]))).toBe(1);
    expect(flatFraction(image(64, 64, noise))).toBe(0);
    // Left half flat (two 16-px block columns of four), right half textured.
    expect(flatFraction(image(64, 64, (x, y) => (x < 32 ? [0, 0, 0] : noise(x, y))))).toBe(0.5);
  });
});

describe('damageOf', () => {
  it('says why in a sentence: decoder warnings first, then transparency, then blank areas', () => {
    const textured = image(64, 64, noise);
    expect(damageOf({ ...textured, warnings: [], transparentFraction: 0 })).toBeUndefined();
    expect(damageOf({ ...textured, warnings: ['Corrupt JPEG data'], transparentFraction: 0 })).toMatch(
      /Corrupt/,
    );
    expect(damageOf({ ...textured, warnings: [], transparentFraction: 0.9 })).toMatch(/90 % .*transparent/);
    const blank = image(64, 64, () => [10, 10, 10]);
    expect(damageOf({ ...blank, warnings: [], transparentFraction: 0 })).toMatch(/100 % .*blank/);
  });

  it('sees what the decoder saw: a bit-flipped JPEG decodes with a warning, an alpha PNG its transparency', async () => {
    const jpeg = await sharp({ create: { width: 200, height: 200, channels: 3, background: '#c08090' } })
      .jpeg()
      .toBuffer();
    // Cut the entropy-coded data short but keep the end marker: libjpeg pads and warns instead of failing.
    const damaged = Buffer.concat([jpeg.subarray(0, jpeg.length - 200), Buffer.from([0xff, 0xd9])]);
    const d = await decodeImage(damaged);
    expect(d.warnings.length).toBeGreaterThan(0);
    expect((await decodeImage(jpeg)).warnings).toEqual([]);

    // Left half transparent, right half opaque pink.
    const rgba = new Uint8Array(100 * 100 * 4);
    for (let i = 0; i < 100 * 100; i++) rgba.set(i % 100 < 50 ? [0, 0, 0, 0] : [200, 100, 100, 255], i * 4);
    const half = await sharp(rgba, { raw: { width: 100, height: 100, channels: 4 } })
      .png()
      .toBuffer();
    expect((await decodeImage(half)).transparentFraction).toBeCloseTo(0.5, 2);
  });
});
