import sharp from 'sharp';
import type { ResizeOptions } from 'sharp';
import { decodeBmp } from './bmp.js';
import {
  checkInput,
  decodeImage,
  DEFAULT_MAX_PIXELS,
  sharpRgb,
  toInvalidImageError,
  wrapRaw,
  type DecodeOptions,
} from './decode.js';
import type { RgbImage } from './types.js';

/**
 * Bump whenever the pixels fed to the model change (kernel, normalisation, crop rule); the feature cache
 * keys on it so stale backbone features are never reused.
 */
export const PREPROCESSING_VERSION = 1;

/** The model's input side; MobileNetV2 was trained at 224. */
export const MODEL_INPUT_SIZE = 224;

/**
 * The one resize kernel for training and serving. libvips' 'linear' is bilinear when enlarging and a
 * triangle (tent) filter widened by the shrink factor when reducing, so downsizing does not alias.
 * fastShrinkOnLoad is off so resizing straight from a JPEG gives the same pixels as decoding first.
 */
const RESIZE: ResizeOptions = { fit: 'fill', kernel: 'linear', fastShrinkOnLoad: false };

/** Resizes (stretching, no crop) to exactly width × height. Returns the input itself if already that size. */
export async function resizeRgb(img: RgbImage, width: number, height: number): Promise<RgbImage> {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`resizeRgb: bad target size ${width}x${height}`);
  }
  if (img.width === width && img.height === height) return img;
  const { data, info } = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .resize(width, height, RESIZE)
    .raw()
    .toBuffer({ resolveWithObject: true });
  return wrapRaw(data, info);
}

/**
 * Decodes and resizes to size × size in one sharp pipeline (no full-size RGB copy in JS), with the size of
 * the image as shown (EXIF orientation applied), from the same read. Same checks and errors as decodeImage,
 * and exactly the pixels of decodeImage → resizeRgb (tested). EXIF-rotated, alpha and 16-bit files take the
 * two-step path: in one pipeline sharp would resize before rotating, premultiplied by alpha or at 16 bits,
 * which rounds differently (off by a few levels).
 */
export async function loadResized(
  input: Buffer | string,
  size = MODEL_INPUT_SIZE,
  options: DecodeOptions = {},
): Promise<{ pixels: RgbImage; width: number; height: number }> {
  const checked = await checkInput(input, options);
  // EXIF orientations 5–8 turn the image a quarter.
  const turned = checked.orientation >= 5;
  const shown = turned
    ? { width: checked.height, height: checked.width }
    : { width: checked.width, height: checked.height };
  if (checked.format === 'bmp')
    return { pixels: await resizeRgb(decodeBmp(checked.buffer), size, size), ...shown };
  if (checked.orientation > 1 || checked.hasAlpha || checked.depth !== 'uchar') {
    return { pixels: await resizeRgb(await decodeImage(checked.buffer, options), size, size), ...shown };
  }
  try {
    const { data, info } = await sharpRgb(checked, options.maxPixels ?? DEFAULT_MAX_PIXELS)
      .resize(size, size, RESIZE)
      .raw()
      .toBuffer({ resolveWithObject: true });
    return { pixels: wrapRaw(data, info), ...shown };
  } catch (err) {
    throw toInvalidImageError(err);
  }
}

// The crop is pure (no sharp): it lives in crop.ts so the browser shares it.
export { cropSquare, type CropBox } from './crop.js';
