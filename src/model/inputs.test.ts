import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { InvalidImageError } from '../errors.js';
import { decodeImage } from '../imaging/decode.js';
import { resizeRgb } from '../imaging/preprocess.js';
import { prepareImage, type Preprocessing } from './inputs.js';

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
      const expected = await resizeRgb(await decodeImage(jpeg), 32, 32);
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
