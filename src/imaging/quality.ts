import type { RgbImage } from './types.js';

/** Side of the square blocks a blank area is measured in (pixels of the decoded image). */
const BLOCK = 16;
/** A block whose every channel spans at most this many levels is flat: no cell, no background texture. */
const FLAT_RANGE = 6;

/**
 * Share of the image in flat blocks: a blank or overexposed frame, a scanner's fill, or what a damaged
 * file decodes to. Microscope fields have texture everywhere (red cells, plasma, noise), so a large share
 * means there is little of a specimen to see. Blocks at the right and bottom edges may be partial.
 */
export function flatFraction(image: RgbImage): number {
  const { width, height, data } = image;
  if (width === 0 || height === 0) return 1;
  let flat = 0;
  for (let by = 0; by < height; by += BLOCK) {
    for (let bx = 0; bx < width; bx += BLOCK) {
      const lo = [255, 255, 255];
      const hi = [0, 0, 0];
      const yEnd = Math.min(height, by + BLOCK);
      const xEnd = Math.min(width, bx + BLOCK);
      for (let y = by; y < yEnd; y++) {
        let i = (y * width + bx) * 3;
        for (let x = bx; x < xEnd; x++, i += 3) {
          for (let c = 0; c < 3; c++) {
            const v = data[i + c];
            if (v < lo[c]) lo[c] = v;
            if (v > hi[c]) hi[c] = v;
          }
        }
      }
      if (hi[0] - lo[0] <= FLAT_RANGE && hi[1] - lo[1] <= FLAT_RANGE && hi[2] - lo[2] <= FLAT_RANGE)
        flat += (yEnd - by) * (xEnd - bx);
    }
  }
  return flat / (width * height);
}

/**
 * Above this flat share an image is called damaged. Set above every training image measured: Kaggle's
 * rotated copies carry black fill and PBC's CellaVision crops smooth background (BENCHMARKS.md, "What the
 * model knows and flags", gives the distribution).
 */
export const DAMAGED_FLAT_FRACTION = 0.75;
/** Above this transparent share an image is called damaged (a cut-out or an export that lost its pixels). */
export const DAMAGED_TRANSPARENT_FRACTION = 0.25;

/** What the decoder and the pixels say about an image's state, before any model looks at it. */
export interface DecodeFindings {
  warnings: string[];
  transparentFraction: number;
}

/** A plain sentence saying why an image looks damaged, or undefined when it does not. */
export function damageOf(image: RgbImage & DecodeFindings): string | undefined {
  if (image.warnings.length > 0) return `The file is damaged: the decoder reported "${image.warnings[0]}".`;
  if (image.transparentFraction > DAMAGED_TRANSPARENT_FRACTION)
    return `${Math.round(image.transparentFraction * 100)} % of the image is transparent.`;
  const flat = flatFraction(image);
  if (flat > DAMAGED_FLAT_FRACTION) return `${Math.round(flat * 100)} % of the image is blank (flat colour).`;
  return undefined;
}
