import { readFile, stat } from 'node:fs/promises';
import sharp from 'sharp';
import type { Metadata, OutputInfo, Sharp } from 'sharp';
import { InvalidImageError } from '../errors.js';
import { decodeBmp, isBmp, readBmpHeader } from './bmp.js';
import type { RgbImage } from './types.js';

export interface DecodeOptions {
  /** Largest accepted encoded size in bytes (default 20 MB). */
  maxBytes?: number;
  /** Largest accepted width × height, checked from the header before any pixel is decoded (default 50 MP). */
  maxPixels?: number;
}

export const DEFAULT_MAX_BYTES = 20 * 1024 * 1024;
const DEFAULT_MAX_PIXELS = 50_000_000;

const SHARP_FORMATS = new Set(['jpeg', 'png', 'tiff', 'webp']);
const FORMAT_LIST = 'JPEG, PNG, TIFF, WebP or BMP';

/** An encoded image that passed the byte, format and pixel-count checks. */
export interface CheckedInput {
  buffer: Buffer;
  format: 'jpeg' | 'png' | 'tiff' | 'webp' | 'bmp';
  /** Stored (pre-orientation) size. */
  width: number;
  height: number;
  /** EXIF orientation, 1 (as stored) to 8. */
  orientation: number;
  hasAlpha: boolean;
  /** Bits per sample as libvips names it: 'uchar' for 8-bit, 'ushort' for 16-bit. */
  depth: string;
}

function megabytes(n: number): string {
  return `${(n / (1024 * 1024)).toFixed(1)} MB`;
}

/** Reads a path or takes a buffer, enforcing maxBytes and turning fs errors into InvalidImageError. */
async function readInput(input: Buffer | string, maxBytes: number): Promise<Buffer> {
  if (typeof input !== 'string') {
    // Accept any Uint8Array at run time (the BMP reader needs Buffer methods); no copy.
    const bytes = input as Uint8Array;
    if (!Buffer.isBuffer(bytes)) input = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (input.length === 0) throw new InvalidImageError('The image is empty (0 bytes).', 'empty_file', 400);
    if (input.length > maxBytes) {
      throw new InvalidImageError(
        `The image is ${megabytes(input.length)}; the limit is ${megabytes(maxBytes)}.`,
        'too_large',
        413,
      );
    }
    return input;
  }
  try {
    const info = await stat(input);
    if (!info.isFile()) throw new InvalidImageError(`${input} is not a file.`, 'not_found', 404);
    if (info.size === 0) throw new InvalidImageError(`${input} is empty (0 bytes).`, 'empty_file', 400);
    if (info.size > maxBytes) {
      throw new InvalidImageError(
        `${input} is ${megabytes(info.size)}; the limit is ${megabytes(maxBytes)}.`,
        'too_large',
        413,
      );
    }
    return await readFile(input);
  } catch (err) {
    if (err instanceof InvalidImageError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new InvalidImageError(`No image file at ${input}.`, 'not_found', 404);
    }
    throw new InvalidImageError(`Cannot read ${input}: ${(err as Error).message}`, 'unreadable_file', 400);
  }
}

function checkPixels(width: number, height: number, maxPixels: number): void {
  if (width * height > maxPixels) {
    throw new InvalidImageError(
      `The image is ${width}x${height} (${((width * height) / 1e6).toFixed(1)} megapixels); ` +
        `the limit is ${(maxPixels / 1e6).toFixed(1)} megapixels.`,
      'too_many_pixels',
      413,
    );
  }
}

/** Maps any sharp/libvips failure to a user-facing error; never lets the raw error through. */
function toInvalidImageError(err: unknown): InvalidImageError {
  if (err instanceof InvalidImageError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (/unsupported image format/i.test(message)) {
    return new InvalidImageError(`This is not a ${FORMAT_LIST} image.`, 'unsupported_format', 415);
  }
  if (/pixel limit/i.test(message)) {
    return new InvalidImageError('The image has too many pixels.', 'too_many_pixels', 413);
  }
  return new InvalidImageError(
    'The image is corrupt or truncated and cannot be decoded; try saving or exporting it again.',
    'corrupt_image',
    400,
  );
}

/**
 * Reads the input and checks size, format and pixel count from the header only.
 * Shared by decodeImage and the upload and preparation checks, so all refuse the same files.
 */
export async function checkInput(input: Buffer | string, options: DecodeOptions = {}): Promise<CheckedInput> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  const buffer = await readInput(input, maxBytes);
  if (isBmp(buffer)) {
    const { width, height } = readBmpHeader(buffer);
    checkPixels(width, height, maxPixels);
    return { buffer, format: 'bmp', width, height, orientation: 1, hasAlpha: false, depth: 'uchar' };
  }
  let meta: Metadata;
  try {
    meta = await sharp(buffer).metadata();
  } catch (err) {
    throw toInvalidImageError(err);
  }
  if (!meta.format || !SHARP_FORMATS.has(meta.format)) {
    throw new InvalidImageError(
      `${meta.format ? meta.format.toUpperCase() : 'This'} images are not supported; use ${FORMAT_LIST}.`,
      'unsupported_format',
      415,
    );
  }
  if (!meta.width || !meta.height) throw toInvalidImageError(new Error('no size in header'));
  checkPixels(meta.width, meta.height, maxPixels);
  return {
    buffer,
    format: meta.format as CheckedInput['format'],
    width: meta.width,
    height: meta.height,
    orientation: meta.orientation ?? 1,
    hasAlpha: meta.hasAlpha ?? false,
    depth: meta.depth ?? 'uchar',
  };
}

/**
 * Starts a sharp pipeline that yields oriented 8-bit sRGB without alpha.
 * failOn 'error' rejects truncated JPEG/PNG/TIFF yet tolerates the harmless warnings common in camera files.
 */
function sharpRgb(checked: CheckedInput, maxPixels: number): Sharp {
  return sharp(checked.buffer, { failOn: 'error', limitInputPixels: Math.max(1, Math.floor(maxPixels)) })
    .autoOrient()
    .removeAlpha()
    .toColourspace('srgb');
}

/** Checks that sharp gave 3 interleaved uchar channels and wraps the buffer without copying. */
function wrapRaw(data: Buffer, info: OutputInfo): RgbImage {
  if (info.channels !== 3 || data.length !== info.width * info.height * 3) {
    throw new InvalidImageError(
      `The image could not be converted to RGB (${info.channels} channels).`,
      'corrupt_image',
      400,
    );
  }
  return {
    width: info.width,
    height: info.height,
    data: new Uint8Array(data.buffer, data.byteOffset, data.length),
  };
}

/** Decoded pixels and what the decoder noticed on the way (a damaged file can still decode). */
export interface DecodedImage extends RgbImage {
  /** The decoder's warnings (a flipped bit in a JPEG: "Corrupt JPEG data: …"); empty for a clean file. */
  warnings: string[];
  /** Share of pixels at least nearly transparent (alpha < 16); 0 for a format or file without alpha. */
  transparentFraction: number;
}

/** Alpha below this (of 255) counts as transparent: nothing of the specimen shows through. */
const TRANSPARENT_ALPHA = 16;

/**
 * Decodes JPEG, PNG, TIFF, WebP or BMP to 8-bit sRGB: EXIF orientation applied, alpha dropped, greyscale,
 * CMYK and 16-bit converted. Every failure is an InvalidImageError with a `code` (empty_file, too_large,
 * too_many_pixels, unsupported_format, corrupt_image, not_found, unreadable_file); warnings the decoder
 * tolerates are returned, not thrown, so a caller can flag the result instead of refusing it.
 */
export async function decodeImage(
  input: Buffer | string,
  options: DecodeOptions = {},
): Promise<DecodedImage> {
  const checked = await checkInput(input, options);
  if (checked.format === 'bmp') return { ...decodeBmp(checked.buffer), warnings: [], transparentFraction: 0 };
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  const warnings: string[] = [];
  try {
    const pipeline = sharpRgb(checked, maxPixels);
    // libvips reports a damaged-but-readable file as a warning ("read gave 1 warnings" plus the detail).
    pipeline.on('warning', (w: string) => {
      if (!/^read gave \d+ warnings?/.test(w)) warnings.push(w.replace(/^Vips\w+: /, '').trim());
    });
    const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
    const transparentFraction = checked.hasAlpha ? await transparentShare(checked, maxPixels) : 0;
    return { ...wrapRaw(data, info), warnings, transparentFraction };
  } catch (err) {
    throw toInvalidImageError(err);
  }
}

/** A second, alpha-only decode: paid only by images that have an alpha channel (rare in microscopy). */
async function transparentShare(checked: CheckedInput, maxPixels: number): Promise<number> {
  const alpha = await sharp(checked.buffer, {
    failOn: 'error',
    limitInputPixels: Math.max(1, Math.floor(maxPixels)),
  })
    .ensureAlpha()
    .extractChannel(3)
    .toColourspace('b-w')
    .raw()
    .toBuffer();
  let clear = 0;
  for (const a of alpha) if (a < TRANSPARENT_ALPHA) clear++;
  return alpha.length === 0 ? 0 : clear / alpha.length;
}
