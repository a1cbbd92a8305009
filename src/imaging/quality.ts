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
    const yEnd = Math.min(height, by + BLOCK);
    for (let bx = 0; bx < width; bx += BLOCK) {
      const xEnd = Math.min(width, bx + BLOCK);
      // A block is flat when every pixel lies within FLAT_RANGE of its first pixel's neighbourhood: track the
      // channel ranges and stop at the first pixel that breaks them (most blocks of a smear stop at once).
      const first = (by * width + bx) * 3;
      let r0 = data[first],
        r1 = r0,
        g0 = data[first + 1],
        g1 = g0,
        b0 = data[first + 2],
        b1 = b0;
      let isFlat = true;
      for (let y = by; y < yEnd && isFlat; y++) {
        let i = (y * width + bx) * 3;
        for (let x = bx; x < xEnd; x++, i += 3) {
          const r = data[i],
            g = data[i + 1],
            b = data[i + 2];
          if (r < r0) r0 = r;
          else if (r > r1) r1 = r;
          if (g < g0) g0 = g;
          else if (g > g1) g1 = g;
          if (b < b0) b0 = b;
          else if (b > b1) b1 = b;
          if (r1 - r0 > FLAT_RANGE || g1 - g0 > FLAT_RANGE || b1 - b0 > FLAT_RANGE) {
            isFlat = false;
            break;
          }
        }
      }
      if (isFlat) flat += (yEnd - by) * (xEnd - bx);
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
