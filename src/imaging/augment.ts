import { uniform, type Rng } from './random.js';
import type { RgbImage } from './types.js';

/** Each magnitude is the half-width of a uniform range; 0 (or false) turns that step off. */
export interface AugmentOptions {
  /** Mirror left–right with probability 0.5. */
  flipHorizontal: boolean;
  /** Mirror top–bottom with probability 0.5. */
  flipVertical: boolean;
  /** Rotate by 0/90/180/270° (non-square images: 0 or 180°, so nothing is cropped). */
  rotate90: boolean;
  /** Extra rotation, degrees, uniform in ±rotationDegrees. */
  rotationDegrees: number;
  /** Shift as a fraction of width (x) and height (y), uniform in ±shift. */
  shift: number;
  /** Scale uniform in [1 - zoom, 1 + zoom]; > 1 magnifies. */
  zoom: number;
  /** Intensity multiplier uniform in 1 ± brightness. */
  brightness: number;
  /** Contrast factor uniform in 1 ± contrast, around the image's mean grey. */
  contrast: number;
  /** Saturation factor uniform in 1 ± saturation. */
  saturation: number;
  /** Hue rotation about the grey axis, degrees, uniform in ±hueDegrees. */
  hueDegrees: number;
  /** Per-stain (H, E, DAB) concentration factor uniform in 1 ± stainScale. */
  stainScale: number;
  /** Per-stain optical-density offset (log10 units) uniform in ±stainShift. */
  stainShift: number;
  /**
   * Resample through a lower resolution, side factor uniform in [1 − resolution, 1], then back up: a 640×480
   * smear photo gives a white cell a few dozen pixels wide, a CellaVision crop gives it hundreds.
   */
  resolution: number;
}

/**
 * Defaults for blood smears: cells have no preferred orientation, so all flips and rotations are safe;
 * colour ranges are mild because stain and lighting vary between labs far less than ImageNet photos do.
 */
export const DEFAULT_AUGMENT_OPTIONS: Readonly<AugmentOptions> = Object.freeze({
  flipHorizontal: true,
  flipVertical: true,
  rotate90: true,
  rotationDegrees: 15,
  shift: 0.08,
  zoom: 0.1,
  brightness: 0.15,
  contrast: 0.15,
  saturation: 0.2,
  hueDegrees: 8,
  stainScale: 0.1,
  stainShift: 0.05,
  resolution: 0,
});

/**
 * For a model meant to hold up in labs it never saw: stain, colour and sharpness vary far more between labs
 * (stain recipe, scanner, camera) than within one.
 */
export const CROSS_LAB_AUGMENT_OPTIONS: Readonly<AugmentOptions> = Object.freeze({
  ...DEFAULT_AUGMENT_OPTIONS,
  brightness: 0.3,
  contrast: 0.4,
  saturation: 0.5,
  hueDegrees: 20,
  stainScale: 0.6,
  stainShift: 0.15,
  resolution: 0.6,
});

export const AUGMENT_PRESETS = {
  default: DEFAULT_AUGMENT_OPTIONS,
  'cross-lab': CROSS_LAB_AUGMENT_OPTIONS,
} as const;
export type AugmentPreset = keyof typeof AUGMENT_PRESETS;

/** The steps of `o` in words, with their ranges, for model cards (derived, so it cannot drift from the values). */
export function describeAugment(o: AugmentOptions): string {
  const pct = (x: number) => `${Math.round(x * 100)} %`;
  const steps = [
    o.flipHorizontal || o.flipVertical ? 'flips' : '',
    o.rotate90 ? '90° turns' : '',
    o.rotationDegrees ? `±${o.rotationDegrees}° rotation` : '',
    o.shift ? `±${pct(o.shift)} shift` : '',
    o.zoom ? `±${pct(o.zoom)} zoom` : '',
    o.brightness ? `brightness ±${pct(o.brightness)}` : '',
    o.contrast ? `contrast ±${pct(o.contrast)}` : '',
    o.saturation ? `saturation ±${pct(o.saturation)}` : '',
    o.hueDegrees ? `hue ±${o.hueDegrees}°` : '',
    o.stainScale || o.stainShift ? `HED stain ×(1 ± ${o.stainScale}) ± ${o.stainShift} OD` : '',
    o.resolution ? `resolution down to ${pct(1 - o.resolution)} of the side` : '',
  ].filter(Boolean);
  return steps.length ? steps.join(', ') : 'none';
}

/** Every step off: augment() then returns an identical copy. */
export const NO_AUGMENT_OPTIONS: Readonly<AugmentOptions> = Object.freeze({
  flipHorizontal: false,
  flipVertical: false,
  rotate90: false,
  rotationDegrees: 0,
  shift: 0,
  zoom: 0,
  brightness: 0,
  contrast: 0,
  saturation: 0,
  hueDegrees: 0,
  stainScale: 0,
  stainShift: 0,
  resolution: 0,
});

type Mat3 = [number, number, number, number, number, number, number, number, number];

// Ruifrok & Johnston (2001) stain OD vectors, rows H, E, DAB (as in scikit-image's rgb_from_hed).
const RGB_FROM_HED: Mat3 = [0.65, 0.7, 0.29, 0.07, 0.99, 0.11, 0.27, 0.57, 0.78];
const HED_FROM_RGB: Mat3 = inverse3(RGB_FROM_HED);
// log10 OD with +1 so black pixels stay finite: od = -log10((p + 1) / 256), p = 256·10^-od − 1.
const OD = Float64Array.from({ length: 256 }, (_, p) => -Math.log10((p + 1) / 256));
// Rec. 601 luma, as torchvision's colour jitter uses.
const LUMA = [0.299, 0.587, 0.114] as const;

function inverse3(m: Mat3): Mat3 {
  const [a, b, c, d, e, f, g, h, i] = m;
  const A = e * i - f * h;
  const B = -(d * i - f * g);
  const C = d * h - e * g;
  const det = a * A + b * B + c * C;
  return [
    A / det,
    -(b * i - c * h) / det,
    (b * f - c * e) / det,
    B / det,
    (a * i - c * g) / det,
    -(a * f - c * d) / det,
    C / det,
    -(a * h - b * g) / det,
    (a * e - b * d) / det,
  ];
}

function mul3(x: Mat3, y: Mat3): Mat3 {
  const out = new Array<number>(9) as Mat3;
  for (let r = 0; r < 3; r++) {
    for (let c = 0; c < 3; c++) {
      out[r * 3 + c] = x[r * 3] * y[c] + x[r * 3 + 1] * y[3 + c] + x[r * 3 + 2] * y[6 + c];
    }
  }
  return out;
}

interface Draws {
  flipH: boolean;
  flipV: boolean;
  quarterTurns: number;
  angle: number;
  shiftX: number;
  shiftY: number;
  scale: number;
  brightness: number;
  contrast: number;
  saturation: number;
  hue: number;
  stainScale: [number, number, number];
  stainShift: [number, number, number];
  resolution: number;
}

/**
 * Draws every parameter, in a fixed order and whether or not its step is on, so turning one step off
 * does not change what the others draw for the same seed.
 */
function draw(rng: Rng, o: AugmentOptions, square: boolean): Draws {
  const u = () => uniform(rng, -1, 1);
  const flipH = rng() < 0.5 && o.flipHorizontal;
  const flipV = rng() < 0.5 && o.flipVertical;
  const turns = Math.floor(rng() * 4);
  const quarterTurns = !o.rotate90 ? 0 : square ? turns : turns & 2;
  return {
    flipH,
    flipV,
    quarterTurns,
    angle: ((u() * o.rotationDegrees) / 180) * Math.PI,
    shiftX: u() * o.shift,
    shiftY: u() * o.shift,
    scale: 1 + u() * o.zoom,
    brightness: 1 + u() * o.brightness,
    contrast: 1 + u() * o.contrast,
    saturation: 1 + u() * o.saturation,
    hue: ((u() * o.hueDegrees) / 180) * Math.PI,
    stainScale: [1 + u() * o.stainScale, 1 + u() * o.stainScale, 1 + u() * o.stainScale],
    stainShift: [u() * o.stainShift, u() * o.stainShift, u() * o.stainShift],
    // Drawn last so the draws before it keep their values for a given seed.
    resolution: 1 - rng() * o.resolution,
  };
}

/**
 * One bilinear affine warp (flip → quarter turns → rotation → zoom → shift, about the centre) with edge
 * replication. Returns null when the transform is the identity.
 */
function warp(img: RgbImage, d: Draws): Uint8Array | null {
  const { width: w, height: h, data: src } = img;
  // Inverse map output → input as L · (out − centre − shift) + centre, L = flip · R(−turns) · R(−angle) / scale.
  const quarter: [number, number, number, number][] = [
    [1, 0, 0, 1],
    [0, 1, -1, 0],
    [-1, 0, 0, -1],
    [0, -1, 1, 0],
  ];
  const [q00, q01, q10, q11] = quarter[d.quarterTurns];
  const cos = Math.cos(d.angle);
  const sin = Math.sin(d.angle);
  const a00 = (q00 * cos + q01 * -sin) / d.scale;
  const a01 = (q00 * sin + q01 * cos) / d.scale;
  const a10 = (q10 * cos + q11 * -sin) / d.scale;
  const a11 = (q10 * sin + q11 * cos) / d.scale;
  const fx = d.flipH ? -1 : 1;
  const fy = d.flipV ? -1 : 1;
  const l00 = fx * a00;
  const l01 = fx * a01;
  const l10 = fy * a10;
  const l11 = fy * a11;
  const tx = d.shiftX * w;
  const ty = d.shiftY * h;
  if (l00 === 1 && l01 === 0 && l10 === 0 && l11 === 1 && tx === 0 && ty === 0) return null;

  const cx = (w - 1) / 2;
  const cy = (h - 1) / 2;
  const maxX = w - 1;
  const maxY = h - 1;
  const out = new Uint8Array(src.length);
  let o = 0;
  for (let y = 0; y < h; y++) {
    const v = y - cy - ty;
    let u = -cx - tx;
    for (let x = 0; x < w; x++, u++, o += 3) {
      let sx = cx + l00 * u + l01 * v;
      let sy = cy + l10 * u + l11 * v;
      sx = sx < 0 ? 0 : sx > maxX ? maxX : sx;
      sy = sy < 0 ? 0 : sy > maxY ? maxY : sy;
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const wx = sx - x0;
      const wy = sy - y0;
      const x1 = x0 < maxX ? x0 + 1 : x0;
      const y1 = y0 < maxY ? y0 + 1 : y0;
      const p00 = (y0 * w + x0) * 3;
      const p01 = (y0 * w + x1) * 3;
      const p10 = (y1 * w + x0) * 3;
      const p11 = (y1 * w + x1) * 3;
      const w00 = (1 - wx) * (1 - wy);
      const w01 = wx * (1 - wy);
      const w10 = (1 - wx) * wy;
      const w11 = wx * wy;
      out[o] = Math.round(src[p00] * w00 + src[p01] * w01 + src[p10] * w10 + src[p11] * w11);
      out[o + 1] = Math.round(
        src[p00 + 1] * w00 + src[p01 + 1] * w01 + src[p10 + 1] * w10 + src[p11 + 1] * w11,
      );
      out[o + 2] = Math.round(
        src[p00 + 2] * w00 + src[p01 + 2] * w01 + src[p10 + 2] * w10 + src[p11 + 2] * w11,
      );
    }
  }
  return out;
}

/**
 * Stain jitter (Tellez et al. 2018 style) then brightness → contrast → saturation → hue, applied in place.
 * The four photometric steps are linear in RGB, so they fold into one 3×3 matrix plus offset and the
 * result is clamped once at the end.
 */
function recolour(data: Uint8Array, d: Draws, o: AugmentOptions): void {
  const n = data.length / 3;
  const values = new Float32Array(data.length);
  if (o.stainScale !== 0 || o.stainShift !== 0) {
    // od' = ((od · HED_FROM_RGB) ∘ scale + shift) · RGB_FROM_HED = od · M + b, and
    // p' = 256·10^-od'_c − 1 = 256·10^-b_c · Π_k 10^(−od_k·M_kc) − 1: nine 256-entry tables, no pow per pixel.
    const [s0, s1, s2] = d.stainScale;
    const m = mul3(mul3(HED_FROM_RGB, [s0, 0, 0, 0, s1, 0, 0, 0, s2]), RGB_FROM_HED);
    const [b0, b1, b2] = d.stainShift;
    const lut = new Float64Array(9 * 256);
    for (let c = 0; c < 3; c++) {
      const shift = b0 * RGB_FROM_HED[c] + b1 * RGB_FROM_HED[3 + c] + b2 * RGB_FROM_HED[6 + c];
      const gain = 256 * Math.pow(10, -shift);
      for (let p = 0; p < 256; p++) {
        lut[c * 256 + p] = gain * Math.pow(10, -OD[p] * m[c]);
        lut[(3 + c) * 256 + p] = Math.pow(10, -OD[p] * m[3 + c]);
        lut[(6 + c) * 256 + p] = Math.pow(10, -OD[p] * m[6 + c]);
      }
    }
    for (let i = 0; i < data.length; i += 3) {
      const r = data[i];
      const g = 768 + data[i + 1];
      const b = 1536 + data[i + 2];
      values[i] = lut[r] * lut[g] * lut[b] - 1;
      values[i + 1] = lut[256 + r] * lut[256 + g] * lut[256 + b] - 1;
      values[i + 2] = lut[512 + r] * lut[512 + g] * lut[512 + b] - 1;
    }
  } else {
    values.set(data);
  }

  let A: Mat3 = [1, 0, 0, 0, 1, 0, 0, 0, 1];
  let offset = 0;
  if (o.brightness !== 0 || o.contrast !== 0 || o.saturation !== 0 || o.hueDegrees !== 0) {
    let meanGrey = 0;
    for (let i = 0; i < values.length; i += 3) {
      meanGrey += LUMA[0] * values[i] + LUMA[1] * values[i + 1] + LUMA[2] * values[i + 2];
    }
    meanGrey /= Math.max(1, n);
    // Saturation: blend with luma grey. Hue: rotation about the (1,1,1) grey axis (Rodrigues).
    const s = d.saturation;
    const S = [0, 1, 2].flatMap((r) => [0, 1, 2].map((c) => (r === c ? s : 0) + (1 - s) * LUMA[c])) as Mat3;
    const cos = Math.cos(d.hue);
    const k = (1 - cos) / 3;
    const sn = Math.sin(d.hue) / Math.sqrt(3);
    const H: Mat3 = [cos + k, k - sn, k + sn, k + sn, cos + k, k - sn, k - sn, k + sn, cos + k];
    // Both keep grey (g,g,g) fixed, so contrast's pull towards the mean commutes to a constant offset.
    A = mul3(H, S).map((x) => x * d.contrast * d.brightness) as Mat3;
    offset = (1 - d.contrast) * d.brightness * meanGrey;
  }
  const [a0, a1, a2, a3, a4, a5, a6, a7, a8] = A;
  for (let i = 0; i < data.length; i += 3) {
    const r = values[i];
    const g = values[i + 1];
    const b = values[i + 2];
    data[i] = clampByte(a0 * r + a1 * g + a2 * b + offset);
    data[i + 1] = clampByte(a3 * r + a4 * g + a5 * b + offset);
    data[i + 2] = clampByte(a6 * r + a7 * g + a8 * b + offset);
  }
}

/**
 * Box-filter down to `factor` of each side (at least 8 px), then bilinear back up to the original size, as a
 * lower-resolution camera followed by our resize would give.
 */
function resample(img: RgbImage, factor: number): RgbImage {
  const { width: w, height: h, data: src } = img;
  const sw = Math.max(8, Math.round(w * factor));
  const sh = Math.max(8, Math.round(h * factor));
  if (sw >= w && sh >= h) return img;
  const small = new Float32Array(sw * sh * 3);
  // Area average: output pixel (x, y) covers input [x·w/sw, (x+1)·w/sw) with fractional edges.
  const fx = w / sw;
  const fy = h / sh;
  for (let y = 0; y < sh; y++) {
    const y0 = y * fy;
    const y1 = y0 + fy;
    for (let x = 0; x < sw; x++) {
      const x0 = x * fx;
      const x1 = x0 + fx;
      let r = 0;
      let g = 0;
      let b = 0;
      for (let yy = Math.floor(y0); yy < Math.min(h, Math.ceil(y1)); yy++) {
        const wy = Math.min(y1, yy + 1) - Math.max(y0, yy);
        for (let xx = Math.floor(x0); xx < Math.min(w, Math.ceil(x1)); xx++) {
          const wt = wy * (Math.min(x1, xx + 1) - Math.max(x0, xx));
          const p = (yy * w + xx) * 3;
          r += src[p] * wt;
          g += src[p + 1] * wt;
          b += src[p + 2] * wt;
        }
      }
      const q = (y * sw + x) * 3;
      const area = fx * fy;
      small[q] = r / area;
      small[q + 1] = g / area;
      small[q + 2] = b / area;
    }
  }
  // Bilinear up, pixel centres aligned (as sharp's and most resizers' convention).
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    const sy = Math.min(sh - 1, Math.max(0, (y + 0.5) * (sh / h) - 0.5));
    const ya = Math.floor(sy);
    const yb = Math.min(sh - 1, ya + 1);
    const ty = sy - ya;
    for (let x = 0; x < w; x++) {
      const sx = Math.min(sw - 1, Math.max(0, (x + 0.5) * (sw / w) - 0.5));
      const xa = Math.floor(sx);
      const xb = Math.min(sw - 1, xa + 1);
      const tx = sx - xa;
      const o = (y * w + x) * 3;
      for (let c = 0; c < 3; c++) {
        const top = small[(ya * sw + xa) * 3 + c] * (1 - tx) + small[(ya * sw + xb) * 3 + c] * tx;
        const bottom = small[(yb * sw + xa) * 3 + c] * (1 - tx) + small[(yb * sw + xb) * 3 + c] * tx;
        out[o + c] = clampByte(top * (1 - ty) + bottom * ty);
      }
    }
  }
  return { width: w, height: h, data: out };
}

function clampByte(v: number): number {
  return v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
}

/**
 * Random training augmentation, pure TypeScript and fully determined by `rng` (same seed → same pixels).
 * Output has the input's size; the input is not modified.
 */
export function augment(img: RgbImage, rng: Rng, options: Partial<AugmentOptions> = {}): RgbImage {
  const o: AugmentOptions = { ...DEFAULT_AUGMENT_OPTIONS, ...options };
  const d = draw(rng, o, img.width === img.height);
  const data = warp(img, d) ?? Uint8Array.from(img.data);
  const photometric =
    o.stainScale !== 0 ||
    o.stainShift !== 0 ||
    o.brightness !== 0 ||
    o.contrast !== 0 ||
    o.saturation !== 0 ||
    o.hueDegrees !== 0;
  if (photometric) recolour(data, d, o);
  const out = { width: img.width, height: img.height, data };
  return d.resolution < 1 ? resample(out, d.resolution) : out;
}
