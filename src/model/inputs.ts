import { augment, type AugmentOptions } from '../imaging/augment.js';
import { decodeImage } from '../imaging/decode.js';
import { damageOf } from '../imaging/quality.js';
import { locateCells, primaryCell } from '../imaging/locate.js';
import { cropSquare, resizeLinear } from '../imaging/preprocess.js';
import { createRng } from '../imaging/random.js';
import type { Box, RgbImage } from '../imaging/types.js';
import type { ModelCard } from './types.js';

export type Preprocessing = ModelCard['preprocessing'];

/** One square region of an image as the network sees it. */
export interface Region {
  /** null for the whole image */
  box: Box | null;
  /** The square that was cropped (image pixels; may extend past the edges, which repeat). */
  square: { x: number; y: number; size: number };
  /** size × size RGB */
  pixels: RgbImage;
}

export interface PreparedImage {
  width: number;
  height: number;
  /** Kept only when asked for (heat maps need it). */
  image?: RgbImage;
  regions: Region[];
  /** Why the image looks damaged (decoder warnings, blank or transparent areas); absent when it does not. */
  damage?: string;
}

/**
 * The one path from an encoded image to network-sized pixels, shared by training and serving so both
 * see identical pixels. 'whole' resizes the whole image; 'cell' crops a square around located white cells
 * (every cell, or only the most likely one when `primaryOnly`).
 */
export async function prepareImage(
  input: Buffer | string,
  prep: Preprocessing,
  options: { keepImage?: boolean; primaryOnly?: boolean } = {},
): Promise<PreparedImage> {
  const size = prep.inputSize;
  const image = await decodeImage(input);
  const base = {
    width: image.width,
    height: image.height,
    image: options.keepImage ? image : undefined,
    damage: damageOf(image),
  };
  if (prep.crop === 'whole') {
    const pixels = resizeLinear(image, size, size);
    const side = Math.max(image.width, image.height);
    return { ...base, regions: [{ box: null, square: { x: 0, y: 0, size: side }, pixels }] };
  }
  const boxes = options.primaryOnly
    ? [primaryCell(image)].filter((b): b is Box => b !== null)
    : locateCells(image);
  const regions = boxes.map((box) => {
    const crop = cropSquare(image, box, prep.cropPadding);
    const side = crop.width;
    const square = {
      x: Math.round(box.x + box.width / 2 - side / 2),
      y: Math.round(box.y + box.height / 2 - side / 2),
      size: side,
    };
    return { box, square, pixels: resizeLinear(crop, size, size) };
  });
  return { ...base, regions };
}

/** Deterministic augmented views of network-sized pixels: view 0 is the original. */
export function augmentedViews(
  pixels: RgbImage,
  views: number,
  seed: number,
  options?: Partial<AugmentOptions>,
): RgbImage[] {
  const out: RgbImage[] = [pixels];
  for (let v = 1; v < views; v++)
    out.push(augment(pixels, createRng((seed * 7919 + v * 104729) >>> 0), options));
  return out;
}

// Pure (the browser shares it): in tensor.ts.
export { writeInput } from './tensor.js';
