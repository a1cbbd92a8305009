import sharp from 'sharp';
import type { Box, RgbImage } from '../imaging/types.js';

/** Where a 7×7 class activation map sits on the image: a square region (it may extend past the edges). */
export interface CamRegion {
  /** 7×7 map of the predicted class, row-major */
  cam: Float32Array;
  x: number;
  y: number;
  size: number;
  /** A box to outline, with its label. */
  box?: Box;
  label?: string;
}

/**
 * Blends each region's class activation map over the image (positive evidence only, scaled to its own
 * maximum) with a blue→red ramp, outlines the boxes, and encodes a PNG.
 */
export async function renderHeatmapPng(img: RgbImage, regions: CamRegion[], maxSide = 640): Promise<Buffer> {
  const scale = Math.min(1, maxSide / Math.max(img.width, img.height));
  const w = Math.max(1, Math.round(img.width * scale));
  const h = Math.max(1, Math.round(img.height * scale));
  const base =
    scale === 1
      ? img.data
      : await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
          .resize(w, h, { fit: 'fill' })
          .raw()
          .toBuffer();
  const heat = new Float32Array(w * h);
  for (const r of regions) paintCam(heat, w, h, r, scale);
  // A copy: the caller's image (base, when not resized) stays untouched.
  const out = Buffer.from(base);
  for (let i = 0; i < w * h; i++) {
    const t = heat[i];
    if (t <= 0) continue;
    // Quantised to 256 levels so the colour ramp is a table lookup, not a computation per pixel.
    const q = Math.min(255, (t * 255) | 0);
    const a = RAMP_ALPHA[q];
    const j = i * 3;
    out[j] = out[j] + (RAMP[q * 3] - out[j]) * a;
    out[j + 1] = out[j + 1] + (RAMP[q * 3 + 1] - out[j + 1]) * a;
    out[j + 2] = out[j + 2] + (RAMP[q * 3 + 2] - out[j + 2]) * a;
  }
  for (const r of regions) if (r.box) outline(out, w, h, r.box, scale);
  return sharp(out, { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toBuffer();
}

function paintCam(heat: Float32Array, w: number, h: number, r: CamRegion, scale: number): void {
  let max = 0;
  for (const v of r.cam) max = Math.max(max, v);
  if (max <= 0) return;
  const x0 = r.x * scale;
  const y0 = r.y * scale;
  const side = r.size * scale;
  const xa = Math.max(0, Math.floor(x0));
  const xb = Math.min(w, Math.ceil(x0 + side));
  const ya = Math.max(0, Math.floor(y0));
  const yb = Math.min(h, Math.ceil(y0 + side));
  for (let y = ya; y < yb; y++) {
    // Map pixel centres to cam cell centres, bilinearly.
    const gy = Math.min(6, Math.max(0, ((y + 0.5 - y0) / side) * 7 - 0.5));
    const iy = Math.min(5, Math.floor(gy));
    const fy = gy - iy;
    for (let x = xa; x < xb; x++) {
      const gx = Math.min(6, Math.max(0, ((x + 0.5 - x0) / side) * 7 - 0.5));
      const ix = Math.min(5, Math.floor(gx));
      const fx = gx - ix;
      const c = r.cam;
      const v =
        (c[iy * 7 + ix] * (1 - fx) + c[iy * 7 + ix + 1] * fx) * (1 - fy) +
        (c[(iy + 1) * 7 + ix] * (1 - fx) + c[(iy + 1) * 7 + ix + 1] * fx) * fy;
      const t = Math.max(0, v / max);
      heat[y * w + x] = Math.max(heat[y * w + x], t);
    }
  }
}

const RAMP = new Uint8Array(256 * 3);
const RAMP_ALPHA = new Float32Array(256);
for (let q = 0; q < 256; q++) {
  const [r, g, b] = ramp(q / 255);
  RAMP.set([r, g, b], q * 3);
  RAMP_ALPHA[q] = 0.55 * (q / 255);
}

function ramp(t: number): [number, number, number] {
  // blue → cyan → yellow → red
  if (t < 1 / 3) return [0, Math.round(255 * t * 3), 255];
  if (t < 2 / 3) return [Math.round(255 * (t - 1 / 3) * 3), 255, Math.round(255 * (1 - (t - 1 / 3) * 3))];
  return [255, Math.round(255 * (1 - (t - 2 / 3) * 3)), 0];
}

function outline(out: Buffer, w: number, h: number, box: Box, scale: number): void {
  const x0 = Math.max(0, Math.round(box.x * scale));
  const y0 = Math.max(0, Math.round(box.y * scale));
  const x1 = Math.min(w - 1, Math.round((box.x + box.width) * scale));
  const y1 = Math.min(h - 1, Math.round((box.y + box.height) * scale));
  const set = (x: number, y: number) => {
    const i = (y * w + x) * 3;
    out[i] = 255;
    out[i + 1] = 255;
    out[i + 2] = 255;
  };
  for (let t = 0; t < 2; t++) {
    for (let x = x0; x <= x1; x++) {
      set(x, Math.min(h - 1, y0 + t));
      set(x, Math.max(0, y1 - t));
    }
    for (let y = y0; y <= y1; y++) {
      set(Math.min(w - 1, x0 + t), y);
      set(Math.max(0, x1 - t), y);
    }
  }
}
