import bmp from 'bmp-js';
import { InvalidImageError } from '../errors.js';
import type { RgbImage } from './types.js';

const FILE_HEADER = 14;
const INFO_HEADER = 40;
const BI_RGB = 0;
const BI_BITFIELDS = 3;

/** True when the bytes start with the BMP magic 'BM'. */
export function isBmp(buf: Uint8Array): boolean {
  return buf.length >= 2 && buf[0] === 0x42 && buf[1] === 0x4d;
}

export interface BmpHeader {
  width: number;
  height: number;
  bitsPerPixel: number;
}

function corrupt(why: string): InvalidImageError {
  return new InvalidImageError(`The BMP file is corrupt or truncated (${why}).`, 'corrupt_image', 400);
}

function unsupported(why: string): InvalidImageError {
  return new InvalidImageError(
    `This BMP variant is not supported (${why}); save it as a 24-bit BMP, PNG or JPEG.`,
    'unsupported_format',
    415,
  );
}

interface ParsedHeader extends BmpHeader {
  dataOffset: number;
  headerSize: number;
  compression: number;
  paletteBytes: number;
  rowBytes: number;
}

function parseHeader(buf: Buffer): ParsedHeader {
  if (buf.length < FILE_HEADER + INFO_HEADER) throw corrupt('header cut short');
  const dataOffset = buf.readUInt32LE(10);
  const headerSize = buf.readUInt32LE(14);
  if (headerSize < INFO_HEADER) throw unsupported(`old ${headerSize}-byte OS/2 header`);
  const width = buf.readInt32LE(18);
  const height = Math.abs(buf.readInt32LE(22));
  const bitsPerPixel = buf.readUInt16LE(28);
  const compression = buf.readUInt32LE(30);
  const colours = buf.readUInt32LE(46);
  if (width <= 0 || height <= 0) throw corrupt(`impossible size ${width}x${height}`);
  if (![1, 4, 8, 24, 32].includes(bitsPerPixel)) throw unsupported(`${bitsPerPixel} bits per pixel`);
  if (compression !== BI_RGB && !(compression === BI_BITFIELDS && bitsPerPixel === 32)) {
    throw unsupported(`compression type ${compression}`);
  }
  const paletteBytes = bitsPerPixel <= 8 ? 4 * (colours || 1 << bitsPerPixel) : 0;
  if (FILE_HEADER + headerSize + paletteBytes > buf.length) throw corrupt('header larger than the file');
  const rowBytes = Math.ceil((width * bitsPerPixel) / 32) * 4;
  return { width, height, bitsPerPixel, dataOffset, headerSize, compression, paletteBytes, rowBytes };
}

/** Reads only the header, so the caller can refuse huge images before allocating pixels. */
export function readBmpHeader(buf: Buffer): BmpHeader {
  const { width, height, bitsPerPixel } = parseHeader(buf);
  return { width, height, bitsPerPixel };
}

/**
 * Decodes an uncompressed 1/4/8/24/32-bit BMP with bmp-js. bmp-js ignores the header size and the
 * pixel-data offset (so it misreads V4/V5 headers, which most tools write for 32-bit) and assumes an odd
 * byte order for BI_BITFIELDS, so the file is first rewritten with a plain 40-byte header.
 */
export function decodeBmp(buf: Buffer): RgbImage {
  try {
    return decodeBmpUnchecked(buf);
  } catch (err) {
    // Whatever a damaged file trips on (a range error on a forged offset…) is the file's fault, never a 500.
    if (err instanceof InvalidImageError) throw err;
    throw corrupt(err instanceof RangeError ? 'offsets point outside the file' : 'unreadable');
  }
}

function decodeBmpUnchecked(buf: Buffer): RgbImage {
  const h = parseHeader(buf);
  if (h.compression === BI_BITFIELDS) {
    // Masks sit inside V4/V5 headers, or right after a 40-byte header.
    const maskAt = FILE_HEADER + INFO_HEADER;
    if (buf.length < maskAt + 12) throw corrupt('colour masks cut short');
    const [r, g, b] = [buf.readUInt32LE(maskAt), buf.readUInt32LE(maskAt + 4), buf.readUInt32LE(maskAt + 8)];
    if (r !== 0x00ff0000 || g !== 0x0000ff00 || b !== 0x000000ff)
      throw unsupported('non-standard colour masks');
  }
  const pixelBytes = h.rowBytes * h.height;
  if (h.dataOffset + pixelBytes > buf.length) throw corrupt('pixel data cut short');
  const paletteAt = FILE_HEADER + h.headerSize;
  if (h.paletteBytes > 0 && paletteAt + h.paletteBytes > h.dataOffset)
    throw corrupt('palette overlaps pixels');

  const plainOffset = FILE_HEADER + INFO_HEADER + h.paletteBytes;
  const plain = Buffer.alloc(plainOffset + pixelBytes);
  plain.write('BM', 0, 'latin1');
  plain.writeUInt32LE(plain.length, 2);
  plain.writeUInt32LE(plainOffset, 10);
  buf.copy(plain, FILE_HEADER, FILE_HEADER, FILE_HEADER + INFO_HEADER);
  plain.writeUInt32LE(INFO_HEADER, 14);
  plain.writeUInt32LE(BI_RGB, 30); // standard masks = same BGRA layout as BI_RGB
  buf.copy(plain, FILE_HEADER + INFO_HEADER, paletteAt, paletteAt + h.paletteBytes);
  buf.copy(plain, plainOffset, h.dataOffset, h.dataOffset + pixelBytes);

  let abgr: Buffer;
  try {
    abgr = bmp.decode(plain).data;
  } catch (err) {
    throw corrupt((err as Error).message);
  }
  const n = h.width * h.height;
  const data = new Uint8Array(n * 3);
  // bmp-js yields [alpha, blue, green, red] per pixel; alpha is dropped.
  for (let i = 0, j = 0; i < n; i++, j += 4) {
    data[i * 3] = abgr[j + 3];
    data[i * 3 + 1] = abgr[j + 2];
    data[i * 3 + 2] = abgr[j + 1];
  }
  return { width: h.width, height: h.height, data };
}
