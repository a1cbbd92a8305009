import { InvalidImageError } from '../errors.js';
import type { Box, RgbImage } from './types.js';

/**
 * White cells are found by their nuclei: in Wright/Giemsa/May-Grünwald-Giemsa smears the nucleus is the
 * only thing that is strongly blue-purple. On a block-averaged copy (~160×120) the stain channel B − G is
 * thresholded above the image's own median (so white balance and black fill do not matter), cleaned with a
 * 3×3 close/open, cut into connected blobs, lobes are merged, and each nucleus is grown into a cell box by a
 * fit to BCCD train boxes. Sizes are fractions of sqrt(width·height) so one set of numbers serves a 640×480
 * field, its 320×240 Kaggle copy and a 360×363 PBC crop.
 */
/** Bump when boxes change; cached features of cell crops key on it. */
export const LOCATOR_VERSION = 1;

export interface LocateOptions {
  /** Working resolution: the image is block-averaged by an integer factor to about this sqrt(w·h). */
  workSize: number;
  /** A pixel is nucleus stain when its B − G exceeds the image's median B − G by this much. */
  stainThreshold: number;
  /** Blobs smaller than this (sqrt(area) / sqrt(w·h)) are granules, platelets or noise: never lobes. */
  minLobe: number;
  /** Lobes whose boxes come closer than this (fraction of sqrt(w·h)) may belong to one nucleus... */
  lobeGap: number;
  /** ...if the darker-stained of the two is at most 1/lobeContrast times the other (platelets stain less)... */
  lobeContrast: number;
  /** ...and the merged nucleus is no wider or taller than this: two touching cells stay apart. */
  maxSpan: number;
  /** A blob wider than maxSpan is cut in two only if both parts are at least this big (sqrt(area)/sqrt(w·h)). */
  minSplit: number;
  /** Nucleus size score ramps from 0 at minNucleus to 1 at fullNucleus (sqrt(area) / sqrt(w·h)). */
  minNucleus: number;
  fullNucleus: number;
  /** Contrast score ramps from 0 at minContrast to 1 at fullContrast (mean B − G above the median). */
  minContrast: number;
  fullContrast: number;
  /**
   * Relative score ramps from 0 at minRelative to 1 at fullRelative, relative to the strongest nucleus in the
   * image: red cells tinted bluish by some stains are far paler than a real nucleus beside them.
   */
  minRelative: number;
  fullRelative: number;
  /**
   * Cell side (each axis) = cellBase·sqrt(w·h) + cellPerSide·nucleus side + cellPerArea·sqrt(nucleus area),
   * centred on the nucleus: a least-squares fit of BCCD train WBC boxes to their nuclei.
   */
  cellBase: number;
  cellPerSide: number;
  cellPerArea: number;
  /** Boxes scoring below this are dropped (field mode). */
  minScore: number;
  /** Of two boxes overlapping by more than this IoU, only the better is kept. */
  maxOverlap: number;
  /**
   * 'field': every white cell. 'crop': the image is a crop centred on one cell (PBC, CellaVision): exactly
   * the centred cell, whatever else the crop's edges show. 'auto': crop when the image is near-square
   * (aspect within cropAspect) and a nucleus lies within cropCentre of its centre, field otherwise.
   */
  mode: 'auto' | 'field' | 'crop';
  cropAspect: number;
  cropCentre: number;
}

export const defaultLocateOptions: LocateOptions = {
  workSize: 140,
  stainThreshold: 40,
  minLobe: 0.05,
  lobeGap: 0.06,
  lobeContrast: 0.8,
  maxSpan: 0.44,
  minSplit: 0.15,
  minNucleus: 0.08,
  fullNucleus: 0.14,
  minContrast: 40,
  fullContrast: 65,
  minRelative: 0.55,
  fullRelative: 0.8,
  cellBase: 0.0336,
  cellPerSide: 0.655,
  cellPerArea: 0.581,
  minScore: 0.5,
  maxOverlap: 0.4,
  mode: 'auto',
  cropAspect: 1.12,
  cropCentre: 0.15,
};

/** A stained blob or a merged nucleus, in working-image pixels (inclusive box). */
export interface Nucleus {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
  area: number;
  /** Mean B − G above the image median over its pixels. */
  contrast: number;
  lobes: number;
}

/** The block-averaged stain channel the locator works on. */
export interface StainMap {
  w: number;
  h: number;
  /** Block size: one working pixel covers f×f image pixels. */
  f: number;
  /** B − G minus the image median, per working pixel. */
  stain: Float32Array;
}

const MAX_BASELINE = 25;

/** Block-averages B − G by an integer factor; black fill gives ~0, i.e. never stain. */
export function stainMap(img: RgbImage, workSize = defaultLocateOptions.workSize): StainMap {
  const { width: W, height: H, data } = img;
  if (!(W > 0 && H > 0) || data.length !== W * H * 3) {
    throw new InvalidImageError(`Pixel buffer does not match a ${W}×${H} RGB image.`);
  }
  const f = Math.max(1, Math.round(Math.sqrt(W * H) / workSize));
  const w = Math.ceil(W / f);
  const h = Math.ceil(H / f);
  // Integer block sums, then one division per block (counts are known from the block geometry).
  const sums = new Int32Array(w * h);
  for (let y = 0; y < H; y++) {
    const row = ((y / f) | 0) * w;
    let i = y * W * 3;
    for (let bx = 0; bx < w; bx++) {
      const end = Math.min(W, (bx + 1) * f);
      let acc = 0;
      for (let x = bx * f; x < end; x++, i += 3) acc += data[i + 2] - data[i + 1];
      sums[row + bx] += acc;
    }
  }
  const stain = new Float32Array(w * h);
  for (let by = 0; by < h; by++) {
    const rows = Math.min(H, (by + 1) * f) - by * f;
    for (let bx = 0; bx < w; bx++) {
      const cols = Math.min(W, (bx + 1) * f) - bx * f;
      stain[by * w + bx] = sums[by * w + bx] / (rows * cols);
    }
  }
  // Median by histogram (values are in [-255, 255]).
  const hist = new Uint32Array(511);
  for (let k = 0; k < stain.length; k++) hist[Math.round(stain[k]) + 255]++;
  let median = 0;
  for (let b = 0, acc = 0; b < hist.length; b++) {
    acc += hist[b];
    if (acc >= stain.length / 2) {
      median = b - 255;
      break;
    }
  }
  // Background and red cells set the median (BCCD ~0, PBC −30…+20); a crop filled by one cell must not
  // lift the bar above its own nucleus.
  median = Math.min(median, MAX_BASELINE);
  for (let k = 0; k < stain.length; k++) stain[k] -= median;
  return { w, h, f, stain };
}

/** 3×3 binary dilation (max) or erosion (min), separable; the border counts as background for neither. */
function morph(mask: Uint8Array, w: number, h: number, dilate: boolean): Uint8Array {
  const tmp = new Uint8Array(mask.length);
  const out = new Uint8Array(mask.length);
  for (let pass = 0; pass < 2; pass++) {
    const src = pass === 0 ? mask : tmp;
    const dst = pass === 0 ? tmp : out;
    const step = pass === 0 ? 1 : w;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const i = y * w + x;
        const hasPrev = pass === 0 ? x > 0 : y > 0;
        const hasNext = pass === 0 ? x < w - 1 : y < h - 1;
        let v = src[i];
        if (dilate) {
          if (hasPrev) v |= src[i - step];
          if (hasNext) v |= src[i + step];
        } else {
          if (hasPrev) v &= src[i - step];
          if (hasNext) v &= src[i + step];
        }
        dst[i] = v;
      }
    }
  }
  return out;
}

/** 8-connected components of `mask`; `label` receives each pixel's component index (−1 outside). */
function components(mask: Uint8Array, map: StainMap, label: Int32Array): Nucleus[] {
  const { w, h, stain } = map;
  label.fill(-1);
  const comps: Nucleus[] = [];
  const stack = new Int32Array(w * h);
  for (let s = 0; s < mask.length; s++) {
    if (!mask[s] || label[s] >= 0) continue;
    const id = comps.length;
    const c: Nucleus = { x0: w, y0: h, x1: -1, y1: -1, area: 0, contrast: 0, lobes: 1 };
    let top = 0;
    stack[top++] = s;
    label[s] = id;
    while (top > 0) {
      const p = stack[--top];
      const x = p % w;
      const y = (p - x) / w;
      c.area++;
      c.contrast += stain[p];
      if (x < c.x0) c.x0 = x;
      if (x > c.x1) c.x1 = x;
      if (y < c.y0) c.y0 = y;
      if (y > c.y1) c.y1 = y;
      for (let yy = Math.max(0, y - 1); yy <= Math.min(h - 1, y + 1); yy++) {
        for (let xx = Math.max(0, x - 1); xx <= Math.min(w - 1, x + 1); xx++) {
          const q = yy * w + xx;
          if (mask[q] && label[q] < 0) {
            label[q] = id;
            stack[top++] = q;
          }
        }
      }
    }
    c.contrast /= c.area;
    comps.push(c);
  }
  return comps;
}

/**
 * Splits a blob wider than one nucleus can be (two cells touching): raises the threshold inside it until it
 * falls into two or more sizeable cores, then hands every pixel of the blob to the core it reaches first.
 * Returns null when no threshold separates it.
 */
function splitTouching(
  blob: number,
  label: Int32Array,
  map: StainMap,
  threshold: number,
  minCore: number,
  minPart: number,
): Nucleus[] | null {
  const { w, stain } = map;
  const pixels: number[] = [];
  for (let i = 0; i < label.length; i++) if (label[i] === blob) pixels.push(i);
  const sub = new Uint8Array(label.length);
  const coreLabel = new Int32Array(label.length);
  for (let t = threshold + 10; t <= threshold + 40; t += 10) {
    sub.fill(0);
    for (const p of pixels) if (stain[p] > t) sub[p] = 1;
    const cores = components(sub, map, coreLabel);
    const keep = cores.map((c) => c.area >= minCore);
    if (keep.filter(Boolean).length < 2) continue;
    // Multi-source breadth-first growth of the cores back over the blob.
    const owner = new Int32Array(label.length).fill(-1);
    const queue: number[] = [];
    for (const p of pixels) {
      if (coreLabel[p] >= 0 && keep[coreLabel[p]]) {
        owner[p] = coreLabel[p];
        queue.push(p);
      }
    }
    for (let head = 0; head < queue.length; head++) {
      const p = queue[head];
      const x = p % w;
      for (const q of [p - w - 1, p - w, p - w + 1, p - 1, p + 1, p + w - 1, p + w, p + w + 1]) {
        if (q < 0 || q >= label.length || Math.abs((q % w) - x) > 1) continue;
        if (label[q] === blob && owner[q] < 0) {
          owner[q] = owner[p];
          queue.push(q);
        }
      }
    }
    const parts = new Map<number, Nucleus>();
    for (const p of pixels) {
      const id = owner[p];
      if (id < 0) continue;
      const x = p % w;
      const y = (p - x) / w;
      const part = parts.get(id) ?? { x0: x, y0: y, x1: x, y1: y, area: 0, contrast: 0, lobes: 1 };
      part.x0 = Math.min(part.x0, x);
      part.y0 = Math.min(part.y0, y);
      part.x1 = Math.max(part.x1, x);
      part.y1 = Math.max(part.y1, y);
      part.area++;
      part.contrast += stain[p];
      parts.set(id, part);
    }
    for (const part of parts.values()) part.contrast /= part.area;
    // Both sides must be whole nuclei; a lobe cut off one nucleus is not a second cell.
    if ([...parts.values()].filter((q) => q.area >= minPart).length < 2) continue;
    return [...parts.values()];
  }
  return null;
}

/**
 * Stained blobs before lobe merging: threshold, 3×3 close (fills nuclear texture and thin gaps) then open
 * (drops specks), 8-connected components; blobs spanning more than `maxSpan` are split where they touch.
 */
export function stainComponents(map: StainMap, options: Partial<LocateOptions> = {}): Nucleus[] {
  const o = { ...defaultLocateOptions, ...options };
  const { w, h, stain } = map;
  const unit = Math.sqrt(w * h);
  let mask: Uint8Array = new Uint8Array(w * h);
  for (let i = 0; i < mask.length; i++) mask[i] = stain[i] > o.stainThreshold ? 1 : 0;
  mask = morph(morph(mask, w, h, true), w, h, false);
  mask = morph(morph(mask, w, h, false), w, h, true);
  const label = new Int32Array(w * h);
  const blobs = components(mask, map, label);
  const span = o.maxSpan * unit;
  const minCore = (o.minLobe * unit) ** 2;
  const minPart = (o.minSplit * unit) ** 2;
  const out: Nucleus[] = [];
  blobs.forEach((b, id) => {
    const wide = Math.max(b.x1 - b.x0 + 1, b.y1 - b.y0 + 1) > span;
    const parts = wide ? splitTouching(id, label, map, o.stainThreshold, minCore, minPart) : null;
    out.push(...(parts ?? [b]));
  });
  return out;
}

function gapBetween(a: Nucleus, b: Nucleus): number {
  const dx = Math.max(0, Math.max(a.x0, b.x0) - Math.min(a.x1, b.x1) - 1);
  const dy = Math.max(0, Math.max(a.y0, b.y0) - Math.min(a.y1, b.y1) - 1);
  return Math.hypot(dx, dy);
}

function union(a: Nucleus, b: Nucleus): Nucleus {
  const area = a.area + b.area;
  return {
    x0: Math.min(a.x0, b.x0),
    y0: Math.min(a.y0, b.y0),
    x1: Math.max(a.x1, b.x1),
    y1: Math.max(a.y1, b.y1),
    area,
    contrast: (a.contrast * a.area + b.contrast * b.area) / area,
    lobes: a.lobes + b.lobes,
  };
}

/**
 * Merges lobes into nuclei, nearest pairs first (single linkage), under the gap, contrast and span limits.
 * Returns the merged nuclei; `blobs` is not modified.
 */
export function mergeLobes(
  blobs: Nucleus[],
  unit: number,
  o: Pick<LocateOptions, 'lobeGap' | 'lobeContrast' | 'maxSpan'>,
): Nucleus[] {
  const gap = o.lobeGap * unit;
  const span = o.maxSpan * unit;
  const pairs: [number, number, number][] = [];
  for (let i = 0; i < blobs.length; i++) {
    for (let j = i + 1; j < blobs.length; j++) {
      const d = gapBetween(blobs[i], blobs[j]);
      if (d <= gap) pairs.push([d, i, j]);
    }
  }
  pairs.sort((p, q) => p[0] - q[0]);
  const parent = blobs.map((_, i) => i);
  const find = (i: number): number => (parent[i] === i ? i : (parent[i] = find(parent[i])));
  const group = blobs.map((b) => ({ ...b }));
  for (const [, i, j] of pairs) {
    const ri = find(i);
    const rj = find(j);
    if (ri === rj) continue;
    const a = blobs[i];
    const b = blobs[j];
    if (Math.min(a.contrast, b.contrast) < o.lobeContrast * Math.max(a.contrast, b.contrast)) continue;
    const u = union(group[ri], group[rj]);
    if (Math.max(u.x1 - u.x0 + 1, u.y1 - u.y0 + 1) > span) continue;
    parent[rj] = ri;
    group[ri] = u;
  }
  return group.filter((_, i) => find(i) === i);
}

const ramp = (v: number, lo: number, hi: number) => Math.min(1, Math.max(0, (v - lo) / (hi - lo)));

/** Nuclei (lobes merged) with their scores, in working pixels. */
export function findNuclei(
  map: StainMap,
  options: Partial<LocateOptions> = {},
): { nucleus: Nucleus; score: number; size: number }[] {
  const o = { ...defaultLocateOptions, ...options };
  const unit = Math.sqrt(map.w * map.h);
  const blobs = stainComponents(map, o).filter((c) => Math.sqrt(c.area) >= o.minLobe * unit);
  const nuclei = mergeLobes(blobs, unit, o);
  // The strongest sizeable nucleus sets the bar for pale look-alikes.
  let strongest = 0;
  for (const n of nuclei) {
    if (Math.sqrt(n.area) >= o.minNucleus * unit) strongest = Math.max(strongest, n.contrast);
  }
  return nuclei.map((nucleus) => {
    const size = Math.sqrt(nucleus.area) / unit;
    const score =
      ramp(size, o.minNucleus, o.fullNucleus) *
      ramp(nucleus.contrast, o.minContrast, o.fullContrast) *
      (strongest > 0 ? ramp(nucleus.contrast / strongest, o.minRelative, o.fullRelative) : 1);
    return { nucleus, score, size };
  });
}

/** Grows a nucleus into the box of its whole cell, in image pixels, clipped to the image. */
function cellBox(n: Nucleus, map: StainMap, img: RgbImage, o: LocateOptions, score: number): Box {
  const unit = Math.sqrt(map.w * map.h);
  const extra = o.cellBase * unit + o.cellPerArea * Math.sqrt(n.area);
  const cw = extra + o.cellPerSide * (n.x1 + 1 - n.x0);
  const ch = extra + o.cellPerSide * (n.y1 + 1 - n.y0);
  const cx = (n.x0 + n.x1 + 1) / 2;
  const cy = (n.y0 + n.y1 + 1) / 2;
  const x0 = Math.round(Math.max(0, (cx - cw / 2) * map.f));
  const y0 = Math.round(Math.max(0, (cy - ch / 2) * map.f));
  const x1 = Math.round(Math.min(img.width, (cx + cw / 2) * map.f));
  const y1 = Math.round(Math.min(img.height, (cy + ch / 2) * map.f));
  return { x: x0, y: y0, width: x1 - x0, height: y1 - y0, score };
}

function overlap(a: Box, b: Box): number {
  const ix = Math.max(0, Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x));
  const iy = Math.max(0, Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y));
  const inter = ix * iy;
  return inter / (a.width * a.height + b.width * b.height - inter || 1);
}

/** Distance of a nucleus centre from the image centre, as a fraction of sqrt(w·h). */
function offCentre(n: Nucleus, map: StainMap): number {
  const dx = (n.x0 + n.x1 + 1) / 2 - map.w / 2;
  const dy = (n.y0 + n.y1 + 1) / 2 - map.h / 2;
  return Math.hypot(dx, dy) / Math.sqrt(map.w * map.h);
}

/**
 * The cell a centred crop shows: the biggest nucleus near the centre, whatever its size score (a crop of a
 * platelet or a small lymphocyte is still that object), with any lobes of it that the field rules kept apart
 * (a magnified eosinophil's lobes lie far apart). Null when nothing stained lies near the centre.
 */
function centredCell(map: StainMap, o: LocateOptions): { nucleus: Nucleus; score: number } | null {
  const unit = Math.sqrt(map.w * map.h);
  const found = findNuclei(map, o).filter((c) => c.nucleus.contrast >= o.minContrast);
  let best: (typeof found)[number] | undefined;
  for (const c of found) {
    if (offCentre(c.nucleus, map) > o.cropCentre) continue;
    if (!best || c.nucleus.area > best.nucleus.area) best = c;
  }
  if (!best) return null;
  let { nucleus } = best;
  // Pull in nearby nuclei of similar stain while the whole still fits one cell.
  const wide = { lobeGap: 2 * o.lobeGap, lobeContrast: o.lobeContrast, maxSpan: 1.3 * o.maxSpan };
  const byGap = found.filter((c) => c !== best);
  byGap.sort((a, b) => gapBetween(a.nucleus, nucleus) - gapBetween(b.nucleus, nucleus));
  for (const c of byGap) {
    const merged = mergeLobes([nucleus, c.nucleus], unit, wide);
    if (merged.length === 1) nucleus = merged[0];
  }
  return { nucleus, score: Math.max(best.score, 0.01) };
}

/** Finds every white cell: boxes over nucleus and cytoplasm, in the image's pixels, best first. */
export function locateCells(img: RgbImage, options: Partial<LocateOptions> = {}): Box[] {
  const o = { ...defaultLocateOptions, ...options };
  if (img.width === 0 || img.height === 0) return [];
  const map = stainMap(img, o.workSize);
  const aspect = img.width / img.height;
  if (o.mode === 'crop' || (o.mode === 'auto' && aspect <= o.cropAspect && aspect >= 1 / o.cropAspect)) {
    const cell = centredCell(map, o);
    if (cell) return [cellBox(cell.nucleus, map, img, o, cell.score)];
    if (o.mode === 'crop') return [];
  }
  const boxes = findNuclei(map, o)
    .filter((c) => c.score >= o.minScore)
    .sort((a, b) => b.score - a.score || b.nucleus.area - a.nucleus.area)
    .map((c) => cellBox(c.nucleus, map, img, o, c.score));
  const kept: Box[] = [];
  for (const b of boxes) if (kept.every((k) => overlap(k, b) <= o.maxOverlap)) kept.push(b);
  return kept;
}

/**
 * The most likely single white cell of an image that holds one (a Kaggle field, a crop), or null: the best
 * scoring box, ties broken towards the centre.
 */
export function primaryCell(img: RgbImage, options: Partial<LocateOptions> = {}): Box | null {
  const boxes = locateCells(img, options);
  if (boxes.length === 0) return null;
  const cx = img.width / 2;
  const cy = img.height / 2;
  const far = (b: Box) => Math.hypot(b.x + b.width / 2 - cx, b.y + b.height / 2 - cy);
  return boxes.reduce((best, b) =>
    b.score > best.score || (b.score === best.score && far(b) < far(best)) ? b : best,
  );
}
