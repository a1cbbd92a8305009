import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { InvalidImageError } from '../errors.js';
import { decodeImage } from '../imaging/decode.js';
import { resizeLinear } from '../imaging/preprocess.js';
import { makeImage } from '../imaging/testing.js';
import { prepareImage, writeInput, type Preprocessing } from './inputs.js';

const whole: Preprocessing = {
  version: 1,
  inputSize: 32,
  crop: 'whole',
  cropPadding: 0,
  resize: 'bilinear',
  normalization: 'imagenet',
};

describe('prepareImage, whole image', () => {
  const wide = () =>
    sharp({ create: { width: 60, height: 40, channels: 3, background: { r: 200, g: 90, b: 120 } } });

  it('reports the size as shown (EXIF orientation applied), and the same pixels with or without the image kept', async () => {
    for (const [orientation, size] of [
      [1, [60, 40]],
      [6, [40, 60]],
    ] as const) {
      const jpeg = await wide().jpeg().withMetadata({ orientation }).toBuffer();
      const fast = await prepareImage(jpeg, whole);
      const kept = await prepareImage(jpeg, whole, { keepImage: true });
      expect([fast.width, fast.height]).toEqual(size);
      expect([kept.width, kept.height]).toEqual(size);
      expect(fast.regions).toHaveLength(1);
      expect(fast.regions[0].square).toEqual({ x: 0, y: 0, size: 60 });
      const expected = resizeLinear(await decodeImage(jpeg), 32, 32);
      expect(Buffer.compare(fast.regions[0].pixels.data, expected.data)).toBe(0);
      expect(Buffer.compare(kept.regions[0].pixels.data, expected.data)).toBe(0);
    }
  });

  it('refuses a truncated file with the image error, whatever reads it first', async () => {
    const jpeg = await wide().jpeg().toBuffer();
    for (let i = 0; i < 5; i++) {
      await expect(prepareImage(jpeg.subarray(0, 40), whole)).rejects.toBeInstanceOf(InvalidImageError);
    }
  });
});

describe('writeInput', () => {
  it('maps 0 → -1, 128 → 0, 255 → 0.9921875 in NCHW layout, at its image slot', () => {
    const size = 8;
    const img = makeImage(size, size, () => [64, 64, 64]);
    img.data.set([0, 128, 255], 0); // (0, 0)
    img.data.set([255, 0, 128], (3 * size + 5) * 3); // (x 5, y 3)
    const plane = size * size;
    const out = new Float32Array(2 * 3 * plane);
    writeInput(img, out, 1);
    expect(out.subarray(0, 3 * plane).every((v) => v === 0)).toBe(true);
    const t = out.subarray(3 * plane);
    expect([t[0], t[plane], t[2 * plane]]).toEqual([-1, 0, 0.9921875]);
    const i = 3 * size + 5;
    expect([t[i], t[plane + i], t[2 * plane + i]]).toEqual([0.9921875, -1, 0]);
    expect(t[1]).toBe(-0.5);
  });
});
