import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import type { Sharp } from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidImageError } from '../errors.js';
import { decodeImage } from './decode.js';
import { gradient, makeImage, maxAbsDiff, pixel, writeBmp } from './testing.js';
import type { RgbImage } from './types.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'hv-decode-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function encoder(img: RgbImage): Sharp {
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });
}

/** Expects `promise` to reject with an InvalidImageError of this code and status. */
async function expectInvalid(
  promise: Promise<unknown>,
  code: string,
  status: number,
): Promise<InvalidImageError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InvalidImageError);
  const e = err as InvalidImageError;
  expect({ code: e.code, status: e.status }).toEqual({ code, status });
  expect(e.message.length).toBeGreaterThan(10);
  expect(e.message).not.toMatch(/vips|sharp/i);
  return e;
}

const src = gradient(37, 23); // odd sizes exercise row padding and stride handling

describe('decodeImage formats', () => {
  it('decodes lossless PNG, TIFF and WebP exactly', async () => {
    const encoded = {
      png: await encoder(src).png().toBuffer(),
      tiff: await encoder(src).tiff({ compression: 'lzw' }).toBuffer(),
      webp: await encoder(src).webp({ lossless: true }).toBuffer(),
    };
    for (const [format, buf] of Object.entries(encoded)) {
      const img = await decodeImage(buf);
      expect({ format, w: img.width, h: img.height }).toEqual({ format, w: 37, h: 23 });
      expect(maxAbsDiff(img.data, src.data), format).toBe(0);
    }
  });

  it('decodes JPEG (lossy, close) from a buffer and from a path', async () => {
    const smooth = makeImage(37, 23, (x, y) => [x * 6, y * 10, 128]);
    const jpeg = await encoder(smooth).jpeg({ quality: 95 }).toBuffer();
    const file = path.join(tmp, 'a.jpg');
    writeFileSync(file, jpeg);
    const fromBuf = await decodeImage(jpeg);
    const fromPath = await decodeImage(file);
    expect(fromBuf.data.length).toBe(37 * 23 * 3);
    expect(maxAbsDiff(fromBuf.data, fromPath.data)).toBe(0);
    let sum = 0;
    for (let i = 0; i < smooth.data.length; i++) sum += Math.abs(fromBuf.data[i] - smooth.data[i]);
    expect(sum / smooth.data.length).toBeLessThan(3);
  });

  it.each([
    { bitsPerPixel: 24, topDown: false, headerSize: 40 },
    { bitsPerPixel: 24, topDown: true, headerSize: 40 },
    { bitsPerPixel: 32, topDown: false, headerSize: 40 },
    { bitsPerPixel: 32, topDown: true, headerSize: 124 },
  ] as const)('decodes hand-written BMP %o exactly', async (spec) => {
    for (const img of [src, gradient(4, 3), gradient(1, 1)]) {
      const out = await decodeImage(writeBmp(img, { ...spec, alpha: 7 }));
      expect([out.width, out.height]).toEqual([img.width, img.height]);
      expect(maxAbsDiff(out.data, img.data)).toBe(0);
    }
  });

  it('accepts a plain Uint8Array view as well as a Buffer', async () => {
    const bmp = writeBmp(src, { bitsPerPixel: 24 });
    const padded = new Uint8Array(bmp.length + 8);
    padded.set(bmp, 8);
    const view = padded.subarray(8) as unknown as Buffer;
    expect(maxAbsDiff((await decodeImage(view)).data, src.data)).toBe(0);
  });

  it('honours EXIF orientation', async () => {
    // Stored 32×16: left half red, right half blue. Orientation 6 = display rotated 90° clockwise.
    const stored = makeImage(32, 16, (x) => (x < 16 ? [255, 0, 0] : [0, 0, 255]));
    const jpeg = await encoder(stored).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    const img = await decodeImage(jpeg);
    expect([img.width, img.height]).toEqual([16, 32]);
    const top = pixel(img, 8, 4);
    const bottom = pixel(img, 8, 28);
    expect(top[0]).toBeGreaterThan(200);
    expect(top[2]).toBeLessThan(50);
    expect(bottom[2]).toBeGreaterThan(200);
    expect(bottom[0]).toBeLessThan(50);
  });

  it('drops alpha, keeping the colour of transparent pixels', async () => {
    const rgba = Buffer.from([10, 20, 30, 0, 200, 100, 50, 255, 1, 2, 3, 128, 4, 5, 6, 255]);
    const png = await sharp(rgba, { raw: { width: 2, height: 2, channels: 4 } })
      .png()
      .toBuffer();
    const img = await decodeImage(png);
    expect(Array.from(img.data)).toEqual([10, 20, 30, 200, 100, 50, 1, 2, 3, 4, 5, 6]);
  });

  it('converts greyscale, 16-bit and CMYK to 8-bit sRGB', async () => {
    const grey = await sharp(Buffer.from([0, 100, 200, 255]), { raw: { width: 2, height: 2, channels: 1 } })
      .png()
      .toBuffer();
    expect(Array.from((await decodeImage(grey)).data)).toEqual([
      0, 0, 0, 100, 100, 100, 200, 200, 200, 255, 255, 255,
    ]);

    const png16 = await encoder(src).toColourspace('rgb16').png().toBuffer();
    expect((await sharp(png16).metadata()).depth).toBe('ushort');
    const img16 = await decodeImage(png16);
    expect(img16.data).toBeInstanceOf(Uint8Array);
    expect(maxAbsDiff(img16.data, src.data)).toBeLessThanOrEqual(1);

    const red = makeImage(8, 8, () => [200, 40, 40]);
    const cmyk = await encoder(red).toColourspace('cmyk').jpeg({ quality: 95 }).toBuffer();
    expect((await sharp(cmyk).metadata()).space).toBe('cmyk');
    const [r, g, b] = pixel(await decodeImage(cmyk), 4, 4);
    // A CMYK round trip through a print profile is not exact; the hue must survive.
    expect(r).toBeGreaterThan(170);
    expect(g).toBeLessThan(80);
    expect(b).toBeLessThan(80);
  });
});

describe('decodeImage errors', () => {
  it('empty_file for 0 bytes (buffer and path)', async () => {
    await expectInvalid(decodeImage(Buffer.alloc(0)), 'empty_file', 400);
    const file = path.join(tmp, 'empty.png');
    writeFileSync(file, '');
    await expectInvalid(decodeImage(file), 'empty_file', 400);
  });

  it('not_found for a missing path', async () => {
    const e = await expectInvalid(decodeImage(path.join(tmp, 'nope.jpg')), 'not_found', 404);
    expect(e.message).toContain('nope.jpg');
    await expectInvalid(decodeImage(tmp), 'not_found', 404);
  });

  it('too_large above maxBytes, before reading the pixels', async () => {
    const png = await encoder(src).png().toBuffer();
    await expectInvalid(decodeImage(png, { maxBytes: png.length - 1 }), 'too_large', 413);
    const file = path.join(tmp, 'big.png');
    writeFileSync(file, png);
    await expectInvalid(decodeImage(file, { maxBytes: 100 }), 'too_large', 413);
    await expect(decodeImage(png, { maxBytes: png.length })).resolves.toBeTruthy();
  });

  it('too_many_pixels from the header alone', async () => {
    const png = await encoder(src).png().toBuffer();
    await expectInvalid(decodeImage(png, { maxPixels: 37 * 23 - 1 }), 'too_many_pixels', 413);
    await expect(decodeImage(png, { maxPixels: 37 * 23 })).resolves.toBeTruthy();

    // A JPEG whose header claims 60000×60000 (3.6 GP) but has almost no data: refused as too big,
    // which proves the check runs before any pixel is decoded.
    const jpeg = Buffer.from(await encoder(src).jpeg().toBuffer());
    const sof = jpeg.indexOf(Buffer.from([0xff, 0xc0]));
    expect(sof).toBeGreaterThan(0);
    jpeg.writeUInt16BE(60000, sof + 5);
    jpeg.writeUInt16BE(60000, sof + 7);
    const scan = jpeg.indexOf(Buffer.from([0xff, 0xda]));
    await expectInvalid(decodeImage(jpeg.subarray(0, scan + 30)), 'too_many_pixels', 413);

    const bmpHeaderOnly = writeBmp(gradient(2, 2), { bitsPerPixel: 24 }).subarray(0, 54);
    bmpHeaderOnly.writeInt32LE(20000, 18);
    bmpHeaderOnly.writeInt32LE(20000, 22);
    await expectInvalid(decodeImage(bmpHeaderOnly), 'too_many_pixels', 413);
  });

  it('unsupported_format for non-images and formats outside the list', async () => {
    await expectInvalid(
      decodeImage(Buffer.from('hello, this is not an image at all')),
      'unsupported_format',
      415,
    );
    const gif = await encoder(src).gif().toBuffer();
    const e = await expectInvalid(decodeImage(gif), 'unsupported_format', 415);
    expect(e.message).toContain('GIF');
    const bmp16 = writeBmp(gradient(2, 2), { bitsPerPixel: 24 });
    bmp16.writeUInt16LE(16, 28);
    await expectInvalid(decodeImage(bmp16), 'unsupported_format', 415);
  });

  it('corrupt_image for truncated JPEG, PNG and BMP', async () => {
    const photo = makeImage(96, 64, (x, y) => [(x * 5) % 256, (y * 9) % 256, (x * y) % 256]);
    const jpeg = await encoder(photo).jpeg().toBuffer();
    await expectInvalid(decodeImage(jpeg.subarray(0, jpeg.length >> 1)), 'corrupt_image', 400);
    const png = await encoder(photo).png().toBuffer();
    await expectInvalid(decodeImage(png.subarray(0, png.length >> 1)), 'corrupt_image', 400);
    const bmp = writeBmp(photo, { bitsPerPixel: 24 });
    await expectInvalid(decodeImage(bmp.subarray(0, bmp.length >> 1)), 'corrupt_image', 400);
    await expectInvalid(decodeImage(bmp.subarray(0, 20)), 'corrupt_image', 400);
    // A flipped bit in the header size points past the end of the file (found by the reliability suite).
    const bigHeader = Buffer.from(bmp);
    bigHeader.writeUInt32LE(0x104028, 14);
    await expectInvalid(decodeImage(bigHeader), 'corrupt_image', 400);
  });
});
