import type { RgbImage } from './types.js';

/**
 * sharp's `kernel: 'linear'` resize (libvips 8.18) in pure TypeScript: the one resize the network's pixels go
 * through in training, on the server and in the browser, so all three compute the same crops. The arithmetic follows libvips' fixed point, measured against sharp stage by
 * stage (resize.test.ts): reducing an axis is a tent filter widened by the shrink factor, its sub-pixel
 * offset quantised to 1/64, 12-bit integer weights, edges repeated, rounded to 8 bits after each axis
 * (vertical first); enlarging is one bilinear pass over both axes with 12-bit weights.
 */
const SHIFT = 12;
const ONE = 1 << SHIFT;
const HALF = 1 << (SHIFT - 1);
/** Sub-pixel positions of the reduce masks (VIPS_TRANSFORM_SCALE). */
const STEPS = 64;

/** C's rint: to nearest, ties to even. */
function rint(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Per output index along one axis: the first source index (may be outside, edges repeat) and the weights. */
interface Taps {
  first: Int32Array;
  n: number;
  weights: Int32Array;
}

function reduceTaps(inLen: number, outLen: number, boxed: number): Taps {
  // sharp hands libvips a scale of 1 / (in / out); libvips reduces by its inverse, after a box shrink by
  // `boxed` (see reduceAxis).
  const shrink = 1 / (1 / (inLen / outLen)) / boxed;
  const extra = (outLen * (1 / (1 / (inLen / outLen))) - inLen) / boxed;
  const n = 2 * rint(shrink) + 1;
  const half = n >> 1;
  // The masks for the 65 sub-pixel offsets, normalised, then truncated to 12 bits.
  const table: Int32Array[] = [];
  for (let t = 0; t <= STEPS; t++) {
    const centre = t / STEPS + n / 2 - 1;
    const w = new Float64Array(n);
    let sum = 0;
    for (let i = 0; i < n; i++) {
      w[i] = Math.max(0, 1 - Math.abs((i - centre) / shrink));
      sum += w[i];
    }
    table.push(Int32Array.from(w, (v) => Math.trunc((v / sum) * ONE)));
  }
  const first = new Int32Array(outLen);
  const weights = new Int32Array(outLen * n);
  // Output pixels are centred in the input; what rounding the size adds or drops is split between the ends.
  const offset = (1 + extra) / 2 - 1;
  let X = 0.5 * shrink - 0.5 - offset;
  for (let o = 0; o < outLen; o++) {
    const sx = Math.trunc(X * STEPS * 2);
    first[o] = (sx >> 7) - half;
    weights.set(table[((sx & (STEPS * 2 - 1)) + 1) >> 1], o * n);
    X += shrink;
  }
  return { first, n, weights };
}

/** Box-averages runs of `factor` pixels along one axis (libvips' shrink with ceil; the last run repeats the edge). */
function boxShrink(img: RgbImage, factor: number, vertical: boolean): RgbImage {
  const { width: W, height: H, data } = img;
  const inLen = vertical ? H : W;
  const outLen = Math.ceil(inLen / factor);
  const width = vertical ? W : outLen;
  const height = vertical ? outLen : H;
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let k = 0; k < factor; k++) {
          const sx = vertical ? x : Math.min(W - 1, x * factor + k);
          const sy = vertical ? Math.min(H - 1, y * factor + k) : y;
          sum += data[(sy * W + sx) * 3 + c];
        }
        out[(y * width + x) * 3 + c] = Math.floor((sum + (factor >> 1)) / factor);
      }
  return { width, height, data: out };
}

/** Reduces the rows (vertical) or the columns of an image along one axis to outLen. */
function reduceAxis(original: RgbImage, outLen: number, vertical: boolean): RgbImage {
  // libvips first box-shrinks by the whole part of in / out / 2 (its reducing gap) when that is 2 or more.
  // Measured exact with a box of 2 (4× to 6× reductions); with 3 or more, one level on a quarter of the
  // values (never a cell crop: those reduce by less than 2×).
  const boxed = Math.max(1, Math.floor((vertical ? original.height : original.width) / outLen / 2));
  const img = boxed > 1 ? boxShrink(original, boxed, vertical) : original;
  const { width: W, height: H, data } = img;
  const inLen = vertical ? H : W;
  const { first, n, weights } = reduceTaps(vertical ? original.height : original.width, outLen, boxed);
  const width = vertical ? W : outLen;
  const height = vertical ? outLen : H;
  const out = new Uint8Array(width * height * 3);
  // Source offsets of every tap, edges repeated.
  const step = vertical ? W * 3 : 3;
  const src = new Int32Array(outLen * n);
  for (let o = 0; o < outLen; o++)
    for (let i = 0; i < n; i++) src[o * n + i] = Math.min(inLen - 1, Math.max(0, first[o] + i)) * step;
  const lines = vertical ? W * 3 : H;
  for (let o = 0; o < outLen; o++) {
    for (let l = 0; l < lines; l++) {
      // vertical: l runs over the values of a row; horizontal: over rows, three channels each.
      const base = vertical ? l : l * W * 3;
      const channels = vertical ? 1 : 3;
      for (let c = 0; c < channels; c++) {
        let sum = 0;
        for (let i = 0; i < n; i++) sum += weights[o * n + i] * data[base + c + src[o * n + i]];
        const v = (sum + HALF) >> SHIFT;
        out[vertical ? o * W * 3 + l : (l * outLen + o) * 3 + c] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  }
  return { width, height, data: out };
}

/**
 * Source positions of an enlarging axis: libvips' affine with the half-pixel input offset resize gives it,
 * stepping along the line by the inverse scale (added up, not multiplied: that decides the last bits where
 * a position falls on a 1/4096 boundary).
 */
function enlargePositions(outLen: number, ia: number): { index: Int32Array; frac: Int32Array } {
  const index = new Int32Array(outLen);
  const frac = new Int32Array(outLen);
  // In the 2-pixel-padded input libvips interpolates in, so the position is never negative.
  let x = -0.5 + 2;
  for (let o = 0; o < outLen; o++, x += ia) {
    const ix = Math.trunc(x);
    index[o] = ix - 2;
    frac[o] = Math.trunc((x - ix) * ONE);
  }
  return { index, frac };
}

function enlarge(img: RgbImage, width: number, height: number): RgbImage {
  const { width: W, height: H, data } = img;
  // The affine matrix diag(a, d), scale 1 on an axis that is not enlarged, inverted as libvips does.
  const a = W < width ? 1 / (W / width) : 1;
  const d = H < height ? 1 / (H / height) : 1;
  const det = a * d;
  const xs = enlargePositions(width, d / det);
  const ys = enlargePositions(height, a / det);
  const clampX = (x: number) => (x < 0 ? 0 : x >= W ? W - 1 : x) * 3;
  const out = new Uint8Array(width * height * 3);
  for (let oy = 0; oy < height; oy++) {
    const y0 = ys.index[oy];
    const r0 = Math.min(H - 1, Math.max(0, y0)) * W * 3;
    const r1 = Math.min(H - 1, Math.max(0, y0 + 1)) * W * 3;
    const Y = ys.frac[oy];
    for (let ox = 0; ox < width; ox++) {
      const X = xs.frac[ox];
      const c4 = (X * Y + HALF) >> SHIFT;
      const c2 = X - c4;
      const c3 = Y - c4;
      const c1 = ONE - X - Y + c4;
      const x0 = clampX(xs.index[ox]);
      const x1 = clampX(xs.index[ox] + 1);
      const o = (oy * width + ox) * 3;
      for (let c = 0; c < 3; c++) {
        out[o + c] =
          (c1 * data[r0 + x0 + c] +
            c2 * data[r0 + x1 + c] +
            c3 * data[r1 + x0 + c] +
            c4 * data[r1 + x1 + c] +
            HALF) >>
          SHIFT;
      }
    }
  }
  return { width, height, data: out };
}

/**
 * Resizes (stretching) to exactly width × height like sharp's `kernel: 'linear'`: reduces the axes that
 * shrink (vertical, then horizontal), then enlarges the ones that grow. Returns the input itself if already
 * that size.
 */
export function resizeLinear(img: RgbImage, width: number, height: number): RgbImage {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`resizeLinear: bad target size ${width}x${height}`);
  }
  if (img.width === width && img.height === height) return img;
  let out = img;
  if (out.height > height) out = reduceAxis(out, height, true);
  if (out.width > width) out = reduceAxis(out, width, false);
  if (out.width < width || out.height < height) out = enlarge(out, width, height);
  return out;
}
