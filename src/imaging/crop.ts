import { InvalidImageError } from '../errors.js';
import type { RgbImage } from './types.js';

export interface CropBox {
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * Square crop centred on the box, side = max(w, h) × (1 + 2 × padding) rounded to whole pixels (at least 1).
 * Parts outside the image repeat the nearest edge pixel: black fill would read as a dark stain to the model.
 */
export function cropSquare(img: RgbImage, box: CropBox, padding: number): RgbImage {
  const values = [box.x, box.y, box.width, box.height, padding];
  if (!values.every(Number.isFinite) || box.width < 0 || box.height < 0 || padding < 0) {
    throw new RangeError(`cropSquare: bad box ${JSON.stringify(box)} or padding ${padding}`);
  }
  if (img.width < 1 || img.height < 1) {
    throw new InvalidImageError('Cannot crop an empty image.', 'corrupt_image', 400);
  }
  const side = Math.max(1, Math.round(Math.max(box.width, box.height) * (1 + 2 * padding)));
  const left = Math.round(box.x + box.width / 2 - side / 2);
  const top = Math.round(box.y + box.height / 2 - side / 2);
  const { width: w, height: h, data: src } = img;
  const out = new Uint8Array(side * side * 3);
  const colOffsets = new Int32Array(side);
  for (let i = 0; i < side; i++) colOffsets[i] = Math.min(w - 1, Math.max(0, left + i)) * 3;
  for (let row = 0; row < side; row++) {
    const sy = Math.min(h - 1, Math.max(0, top + row));
    const srcRow = sy * w * 3;
    let o = row * side * 3;
    for (let i = 0; i < side; i++, o += 3) {
      const s = srcRow + colOffsets[i];
      out[o] = src[s];
      out[o + 1] = src[s + 1];
      out[o + 2] = src[s + 2];
    }
  }
  return { width: side, height: side, data: out };
}
