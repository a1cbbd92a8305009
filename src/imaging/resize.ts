import type { RgbImage } from './types.js';

interface Taps {
  /** Per output index: the first source index (before clamping to the edge). */
  start: Int32Array;
  /** Per output index: n weights summing to 1. */
  weights: Float32Array;
  n: number;
}

/**
 * Triangle-filter taps along one axis, as libvips' 'linear' kernel places them: a reducing window is centred
 * on (o + 0.5) × shrink − 0.5 and widened by the shrink factor; enlarging samples o × shrink − 0.5 bilinearly
 * (both measured against sharp, see resize.test.ts).
 */
function taps(inSize: number, outSize: number): Taps {
  const shrink = inSize / outSize;
  const half = Math.max(1, shrink);
  const n = Math.ceil(2 * half) + 1;
  const start = new Int32Array(outSize);
  const weights = new Float32Array(outSize * n);
  const w = new Float64Array(n);
  for (let o = 0; o < outSize; o++) {
    const X = shrink >= 1 ? (o + 0.5) * shrink - 0.5 : o * shrink - 0.5;
    const first = Math.floor(X) - Math.floor((n - 1) / 2);
    start[o] = first;
    let sum = 0;
    for (let j = 0; j < n; j++) {
      w[j] = Math.max(0, 1 - Math.abs(first + j - X) / half);
      sum += w[j];
    }
    for (let j = 0; j < n; j++) weights[o * n + j] = w[j] / sum;
  }
  return { start, weights, n };
}

/**
 * Resizes (stretching) to exactly width × height like sharp's `kernel: 'linear'` (bilinear when enlarging, a
 * tent widened by the shrink factor when reducing, edges repeated), in pure TypeScript so a browser can
 * compute the pixels the server computes with sharp: enlarging (cell crops are mostly smaller than 224) at
 * most 1 level apart on a fraction of a percent of the values; reducing, 1 level on up to ~15 % of them
 * (libvips reduces in fixed point). Returns the input itself if already that size.
 */
export function resizeLinear(img: RgbImage, width: number, height: number): RgbImage {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`resizeLinear: bad target size ${width}x${height}`);
  }
  const { width: W, height: H, data } = img;
  if (W === width && H === height) return img;
  // Vertical pass first, kept in float (rounding between passes moves ~15 % of enlarged values by a level).
  const tv = taps(H, height);
  const mid = new Float32Array(W * height * 3);
  const rowLen = W * 3;
  for (let y = 0; y < height; y++) {
    const o = y * rowLen;
    for (let j = 0; j < tv.n; j++) {
      const wt = tv.weights[y * tv.n + j];
      if (wt === 0) continue;
      const s = Math.min(H - 1, Math.max(0, tv.start[y] + j)) * rowLen;
      for (let x = 0; x < rowLen; x++) mid[o + x] += wt * data[s + x];
    }
  }
  const th = taps(W, width);
  const cols = new Int32Array(width * th.n);
  for (let x = 0; x < width; x++)
    for (let j = 0; j < th.n; j++) cols[x * th.n + j] = Math.min(W - 1, Math.max(0, th.start[x] + j)) * 3;
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const row = y * rowLen;
    for (let x = 0; x < width; x++) {
      let r = 0,
        g = 0,
        b = 0;
      for (let j = 0; j < th.n; j++) {
        const wt = th.weights[x * th.n + j];
        const s = row + cols[x * th.n + j];
        r += wt * mid[s];
        g += wt * mid[s + 1];
        b += wt * mid[s + 2];
      }
      const o = (y * width + x) * 3;
      // Uint8Array clamps; +0.5 then truncation rounds half up.
      out[o] = Math.max(0, Math.min(255, Math.floor(r + 0.5)));
      out[o + 1] = Math.max(0, Math.min(255, Math.floor(g + 0.5)));
      out[o + 2] = Math.max(0, Math.min(255, Math.floor(b + 0.5)));
    }
  }
  return { width, height, data: out };
}
