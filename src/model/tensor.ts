import type { RgbImage } from '../imaging/types.js';

/** Writes pixels as (p − 128)/128 NCHW into `out` at image slot `slot`. */
export function writeInput(pixels: RgbImage, out: Float32Array, slot: number): void {
  const hw = pixels.width * pixels.height;
  const base = slot * 3 * hw;
  const d = pixels.data;
  for (let i = 0; i < hw; i++) {
    out[base + i] = (d[i * 3] - 128) / 128;
    out[base + hw + i] = (d[i * 3 + 1] - 128) / 128;
    out[base + 2 * hw + i] = (d[i * 3 + 2] - 128) / 128;
  }
}
