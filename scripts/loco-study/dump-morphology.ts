/**
 * Hand-made colour, texture and size features of the same cell crops dump-features.ts runs through the
 * network (one unaugmented primary crop per image), for the leave-one-class-out study (scores.py): stain
 * optical density, its chromaticity among stained pixels, granularity and the located box's size. These
 * measure what a haematologist looks at (granules, nuclear share, size) without any class learned.
 *
 * Usage: npx tsx scripts/loco-study/dump-morphology.ts   → .cache/loco/morph.{bin,json}
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { prepareImage } from '../../src/model/inputs.js';
import { scanDatasets } from '../../src/training/dataset.js';
import { preprocessingFor } from '../../src/training/model-card.js';
import type { RgbImage } from '../../src/imaging/types.js';

const SHARED = resolve(process.env.SHARED ?? '../shared');
const ds = await scanDatasets([join(SHARED, 'data/kaggle-blood-cells/TRAIN'), join(SHARED, 'data/pbc')]);
const prep = preprocessingFor('cell', 0);

const DARK_BINS = 16;
const DARK_MAX = 3;
const CHROMA_BINS = 6;
const GRAIN_BINS = 8;
export const MORPH_DIM = DARK_BINS + CHROMA_BINS * CHROMA_BINS + GRAIN_BINS + 8;

function morphology(img: RgbImage, box: { width: number; height: number }): Float32Array {
  const { width: w, height: h, data } = img;
  const n = w * h;
  const od = new Float32Array(n * 3);
  const dark = new Float32Array(n);
  for (let p = 0; p < n; p++) {
    let s = 0;
    for (let c = 0; c < 3; c++) {
      const v = -Math.log((data[p * 3 + c] + 1) / 256);
      od[p * 3 + c] = v;
      s += v;
    }
    dark[p] = s;
  }
  const out = new Float32Array(MORPH_DIM);
  let o = 0;
  for (let p = 0; p < n; p++)
    out[o + Math.min(DARK_BINS - 1, Math.floor((dark[p] / DARK_MAX) * DARK_BINS))] += 1 / n;
  o += DARK_BINS;
  // Stained pixels: darker than the crop's background (its 30th percentile) by a fixed margin.
  const sorted = Float32Array.from(dark).sort();
  const background = sorted[Math.floor(0.3 * n)];
  const stained = (p: number) => dark[p] > background + 0.35;
  const nucleus = (p: number) => dark[p] > background + 1.0;
  let ns = 0;
  let nn = 0;
  const chroma = new Float32Array(CHROMA_BINS * CHROMA_BINS);
  for (let p = 0; p < n; p++) {
    if (!stained(p)) continue;
    ns++;
    if (nucleus(p)) nn++;
    const s = dark[p] || 1;
    const a = od[p * 3] / s; // red share of the density (blue-purple stains absorb red)
    const b = od[p * 3 + 2] / s;
    const i = Math.min(CHROMA_BINS - 1, Math.max(0, Math.floor(a * CHROMA_BINS * 1.5)));
    const j = Math.min(CHROMA_BINS - 1, Math.max(0, Math.floor(b * CHROMA_BINS * 1.5)));
    chroma[i * CHROMA_BINS + j]++;
  }
  for (let k = 0; k < chroma.length; k++) out[o + k] = ns ? chroma[k] / ns : 0;
  o += CHROMA_BINS * CHROMA_BINS;
  // Granularity: absolute Laplacian of the density on stained pixels.
  let lapSum = 0;
  for (let y = 1; y < h - 1; y++)
    for (let x = 1; x < w - 1; x++) {
      const p = y * w + x;
      if (!stained(p)) continue;
      const lap = Math.abs(4 * dark[p] - dark[p - 1] - dark[p + 1] - dark[p - w] - dark[p + w]);
      lapSum += lap;
      out[o + Math.min(GRAIN_BINS - 1, Math.floor(lap * 4))] += 1 / Math.max(1, ns);
    }
  o += GRAIN_BINS;
  let meanStained = 0;
  let meanNucleus = 0;
  for (let p = 0; p < n; p++) {
    if (stained(p)) meanStained += dark[p];
    if (nucleus(p)) meanNucleus += dark[p];
  }
  out[o++] = ns / n;
  out[o++] = nn / n;
  out[o++] = ns ? nn / ns : 0;
  out[o++] = ns ? meanStained / ns - background : 0;
  out[o++] = nn ? meanNucleus / nn - background : 0;
  out[o++] = ns ? lapSum / ns : 0;
  out[o++] = Math.log(Math.max(1, box.width * box.height));
  out[o] = box.width / Math.max(1, box.height);
  return out;
}

const rows: { item: number; label: string; source: string }[] = [];
const vectors: Float32Array[] = [];
for (let i = 0; i < ds.items.length; i++) {
  const it = ds.items[i];
  const prepared = await prepareImage(await readFile(it.path), prep, { primaryOnly: true });
  const r = prepared.regions[0];
  if (r?.box) {
    vectors.push(morphology(r.pixels, r.box));
    rows.push({ item: i, label: it.label, source: ds.sources[it.source].name });
  }
  if (i % 1000 === 0) console.error(`${i} / ${ds.items.length}`);
}
mkdirSync('.cache/loco', { recursive: true });
const x = new Float32Array(vectors.length * MORPH_DIM);
vectors.forEach((v, r) => x.set(v, r * MORPH_DIM));
writeFileSync('.cache/loco/morph.bin', Buffer.from(x.buffer));
writeFileSync('.cache/loco/morph.json', JSON.stringify({ n: vectors.length, d: MORPH_DIM, rows }));
console.error(`${vectors.length} rows of ${MORPH_DIM} morphology features`);
