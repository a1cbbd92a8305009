// Helpers shared by the imaging tests (not used by product code).
import type { RgbImage } from './types.js';

/** An image whose every pixel is fn(x, y). */
export function makeImage(width: number, height: number, fn: (x: number, y: number) => number[]): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.set(fn(x, y).slice(0, 3), (y * width + x) * 3);
  }
  return { width, height, data };
}

/** A smooth, colourful test pattern (distinct values, no flat areas). */
export function gradient(width: number, height: number): RgbImage {
  return makeImage(width, height, (x, y) => [
    Math.round((x * 255) / Math.max(1, width - 1)),
    Math.round((y * 255) / Math.max(1, height - 1)),
    (x * 7 + y * 13) % 256,
  ]);
}

export function pixel(img: RgbImage, x: number, y: number): number[] {
  const i = (y * img.width + x) * 3;
  return [img.data[i], img.data[i + 1], img.data[i + 2]];
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export interface BmpSpec {
  bitsPerPixel: 24 | 32;
  topDown?: boolean;
  /** 40 = BITMAPINFOHEADER; 124 = BITMAPV5HEADER with BI_BITFIELDS masks (what most tools write for 32-bit). */
  headerSize?: 40 | 124;
  /** Alpha byte for 32-bit pixels. */
  alpha?: number;
}

/** Writes a BMP by hand, so the BMP path is tested against the format rather than against an encoder. */
export function writeBmp(img: RgbImage, spec: BmpSpec): Buffer {
  const { width, height } = img;
  const bpp = spec.bitsPerPixel;
  const headerSize = spec.headerSize ?? 40;
  const rowBytes = Math.ceil((width * bpp) / 32) * 4;
  const offset = 14 + headerSize;
  const buf = Buffer.alloc(offset + rowBytes * height);
  buf.write('BM', 0, 'latin1');
  buf.writeUInt32LE(buf.length, 2);
  buf.writeUInt32LE(offset, 10);
  buf.writeUInt32LE(headerSize, 14);
  buf.writeInt32LE(width, 18);
  buf.writeInt32LE(spec.topDown ? -height : height, 22);
  buf.writeUInt16LE(1, 26);
  buf.writeUInt16LE(bpp, 28);
  buf.writeUInt32LE(headerSize === 124 ? 3 : 0, 30);
  buf.writeUInt32LE(rowBytes * height, 34);
  if (headerSize === 124) {
    buf.writeUInt32LE(0x00ff0000, 54);
    buf.writeUInt32LE(0x0000ff00, 58);
    buf.writeUInt32LE(0x000000ff, 62);
    buf.writeUInt32LE(0xff000000, 66);
    buf.write('BGRs', 70, 'latin1');
  }
  for (let y = 0; y < height; y++) {
    const fileRow = spec.topDown ? y : height - 1 - y;
    for (let x = 0; x < width; x++) {
      const [r, g, b] = pixel(img, x, y);
      const at = offset + fileRow * rowBytes + (x * bpp) / 8;
      buf[at] = b;
      buf[at + 1] = g;
      buf[at + 2] = r;
      if (bpp === 32) buf[at + 3] = spec.alpha ?? 255;
    }
  }
  return buf;
}
