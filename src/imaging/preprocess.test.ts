import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import type { Sharp } from 'sharp';
import { describe, expect, it } from 'vitest';
import { InvalidImageError } from '../errors.js';
import { decodeImage } from './decode.js';
import { cropSquare, loadResized, PREPROCESSING_VERSION, resizeRgb } from './preprocess.js';
import { makeImage, maxAbsDiff, pixel, writeBmp } from './testing.js';
import type { RgbImage } from './types.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const shared = path.resolve(repoRoot, '../shared');

function encoder(img: RgbImage): Sharp {
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });
}

describe('resizeRgb', () => {
  it('returns the requested size and keeps flat colours flat', async () => {
    const flat = makeImage(50, 30, () => [12, 200, 90]);
    const out = await resizeRgb(flat, 224, 224);
    expect([out.width, out.height, out.data.length]).toEqual([224, 224, 224 * 224 * 3]);
    expect(pixel(out, 0, 0)).toEqual([12, 200, 90]);
    expect(pixel(out, 223, 223)).toEqual([12, 200, 90]);
  });

  it('stretches (fit fill) and returns the input when the size already matches', async () => {
    const img = makeImage(40, 20, (x) => (x < 20 ? [255, 0, 0] : [0, 0, 255]));
    const out = await resizeRgb(img, 10, 10);
    expect(pixel(out, 1, 5)[0]).toBeGreaterThan(240);
    expect(pixel(out, 8, 5)[2]).toBeGreaterThan(240);
    expect(await resizeRgb(img, 40, 20)).toBe(img);
    await expect(resizeRgb(img, 0, 10)).rejects.toThrow(RangeError);
  });
});

describe('PREPROCESSING_VERSION', () => {
  it('exports a preprocessing version for cache keys', () => {
    expect(PREPROCESSING_VERSION).toBe(1);
  });
});

describe('loadResized (one sharp pipeline)', () => {
  const photo = makeImage(320, 240, (x, y) => [
    128 + Math.round(100 * Math.sin(x / 9)),
    128 + Math.round(100 * Math.cos(y / 7)),
    (x + y) % 256,
  ]);

  it('gives exactly the pixels of decodeImage → resizeRgb', async () => {
    const inputs: Record<string, Buffer> = {
      jpeg: await encoder(photo).jpeg().toBuffer(),
      jpegRotated6: await encoder(photo).jpeg().withMetadata({ orientation: 6 }).toBuffer(),
      jpegRotated3: await encoder(photo).jpeg().withMetadata({ orientation: 3 }).toBuffer(),
      png: await encoder(photo).png().toBuffer(),
      pngAlpha: await encoder(photo).ensureAlpha(0.5).png().toBuffer(),
      grey: await encoder(photo).greyscale().png().toBuffer(),
      cmyk: await encoder(photo).toColourspace('cmyk').jpeg().toBuffer(),
      webp: await encoder(photo).webp().toBuffer(),
      png16: await encoder(photo).toColourspace('rgb16').png().toBuffer(),
      tiff: await encoder(photo).tiff().toBuffer(),
      bmp: writeBmp(photo, { bitsPerPixel: 24 }),
    };
    for (const [name, buf] of Object.entries(inputs)) {
      for (const size of [224, 64, 400]) {
        const twoStep = await resizeRgb(await decodeImage(buf), size, size);
        const oneStep = (await loadResized(buf, size)).pixels;
        expect(maxAbsDiff(oneStep.data, twoStep.data), `${name} @${size}`).toBe(0);
      }
      // The size reported with the pixels is the decoded image's, turned by its EXIF orientation.
      const decoded = await decodeImage(buf);
      const { width, height } = await loadResized(buf, 64);
      expect([width, height], name).toEqual([decoded.width, decoded.height]);
    }
  });

  it('refuses the same inputs as decodeImage', async () => {
    await expect(loadResized(Buffer.alloc(0))).rejects.toMatchObject({ code: 'empty_file' });
    await expect(loadResized(Buffer.from('not an image at all'))).rejects.toBeInstanceOf(InvalidImageError);
    const png = await encoder(photo).png().toBuffer();
    await expect(loadResized(png, 224, { maxPixels: 1000 })).rejects.toMatchObject({
      code: 'too_many_pixels',
      status: 413,
    });
    const jpeg = await encoder(photo).jpeg().toBuffer();
    await expect(loadResized(jpeg.subarray(0, jpeg.length >> 1))).rejects.toMatchObject({
      code: 'corrupt_image',
    });
  });

  const dirs = ['data/kaggle-blood-cells/TRAIN/EOSINOPHIL', 'data/bccd/JPEGImages', 'data/pbc/neutrophil'];
  it.skipIf(!existsSync(shared))('matches the two-step path on real dataset JPEGs', async () => {
    for (const dir of dirs) {
      const full = path.join(shared, dir);
      for (const f of readdirSync(full).sort().slice(0, 3)) {
        const file = path.join(full, f);
        const twoStep = await resizeRgb(await decodeImage(file), 224, 224);
        const oneStep = (await loadResized(file, 224)).pixels;
        expect(maxAbsDiff(oneStep.data, twoStep.data), file).toBe(0);
      }
    }
  });
  if (!existsSync(shared)) console.warn(`skipping dataset comparison: ${shared} not found`);
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
