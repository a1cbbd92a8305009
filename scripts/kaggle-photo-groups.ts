/**
 * Rebuilds src/training/kaggle-photo-groups.tsv: which BCCD photo each Kaggle "Blood Cell Images" file was
 * augmented from, so that a validation split never puts copies of one photo on both sides.
 *
 *   npx tsx scripts/kaggle-photo-groups.ts [shared-dir] [out.tsv]      (~1 minute, one core)
 *
 * Why: the files are named `_A_B.jpeg`, and A is NOT the photo — it is the image's index in a shuffled
 * augmentation batch (one A holds copies of nearly every photo of its class). So we match images to photos.
 *
 * How: both images are reduced to 160×120 (the Kaggle images are the 640×480 photos halved, then rotated,
 * flipped, sheared, shifted and zoomed with black fill). Around the white cell (largest purple blob) the
 * green channel is sampled on 11 rings; per ring the first 8 angular Fourier coefficients describe it.
 * Magnitudes (rotation/flip invariant) shortlist 10 photos over a zoom range; then the full complex
 * coefficients, best over rotation and mirror, pick the photo. Candidates are only the photos that
 * sources.csv puts in the image's split and class. Photos of the same field (near-identical descriptors,
 * checked by eye: e.g. 00037/00038, 00230/00257) share a group, and so do two photos of a class that
 * many images cannot tell apart (their copies would otherwise be split between them).
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

const W = 160;
const H = 120;
const P = W * H;
const NR = 11; // rings
const R0 = 4;
const DR = 4;
const NA = 64; // samples per ring
const NH = 9; // harmonics 0..8 (0 = ring mean)
const NS = 128; // rotation steps in the phase search
const ZOOMS: number[] = [];
for (let z = 0.7; z <= 1.75; z *= 1.04) ZOOMS.push(z);
/** Below this phase distance two BCCD photos show the same field (gap observed between 10.9 and 11.6). */
const SAME_FIELD = 11;
/** An image is ambiguous between its two best photos when best/second distance exceeds this. */
const AMBIGUOUS = 0.7;

interface Desc {
  mean: Float32Array;
  re: Float32Array;
  im: Float32Array;
  mag: Float32Array;
}

async function thumbnails(files: string[]): Promise<Buffer> {
  const buf = Buffer.alloc(files.length * P * 3);
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const k = next++;
      const raw = await sharp(files[k]).resize(W, H, { fit: 'fill' }).removeAlpha().raw().toBuffer();
      raw.copy(buf, k * P * 3);
    }
  };
  await Promise.all([worker(), worker()]);
  return buf;
}

/** Centroid of the largest 4-connected purple blob: the white cell's nucleus. */
function wbcCenter(buf: Buffer, off: number): { cx: number; cy: number } {
  const m = new Uint8Array(P);
  for (let i = 0; i < P; i++) {
    const r = buf[off + 3 * i];
    const g = buf[off + 3 * i + 1];
    const b = buf[off + 3 * i + 2];
    m[i] = b - g > 45 && r + g + b > 60 ? 1 : 0;
  }
  const lab = new Int32Array(P);
  let best = 0;
  let bestN = 0;
  let cur = 0;
  const stack: number[] = [];
  for (let i = 0; i < P; i++) {
    if (!m[i] || lab[i]) continue;
    cur++;
    let n = 0;
    stack.push(i);
    lab[i] = cur;
    while (stack.length) {
      const p = stack.pop()!;
      n++;
      const x = p % W;
      const y = (p / W) | 0;
      for (const q of [
        x > 0 ? p - 1 : -1,
        x < W - 1 ? p + 1 : -1,
        y > 0 ? p - W : -1,
        y < H - 1 ? p + W : -1,
      ]) {
        if (q >= 0 && m[q] && !lab[q]) {
          lab[q] = cur;
          stack.push(q);
        }
      }
    }
    if (n > bestN) [bestN, best] = [n, cur];
  }
  if (bestN === 0) return { cx: W / 2, cy: H / 2 };
  let sx = 0;
  let sy = 0;
  for (let i = 0; i < P; i++) {
    if (lab[i] === best) {
      sx += i % W;
      sy += (i / W) | 0;
    }
  }
  return { cx: sx / bestN, cy: sy / bestN };
}

/** Green channel, bilinear; NaN outside the frame or on the black fill. */
function sample(buf: Buffer, off: number, x: number, y: number): number {
  if (x < 0 || y < 0 || x > W - 1.001 || y > H - 1.001) return NaN;
  const x0 = Math.floor(x);
  const y0 = Math.floor(y);
  const fx = x - x0;
  const fy = y - y0;
  let v = 0;
  const taps: [number, number, number][] = [
    [0, 0, (1 - fx) * (1 - fy)],
    [1, 0, fx * (1 - fy)],
    [0, 1, (1 - fx) * fy],
    [1, 1, fx * fy],
  ];
  for (const [dx, dy, w] of taps) {
    const p = off + 3 * ((y0 + dy) * W + x0 + dx);
    if (buf[p] + buf[p + 1] + buf[p + 2] < 45) return NaN;
    v += w * buf[p + 1];
  }
  return v;
}

const COS = Array.from({ length: NH }, (_, h) =>
  Float64Array.from({ length: NA }, (_, a) => Math.cos((2 * Math.PI * h * a) / NA)),
);
const SIN = Array.from({ length: NH }, (_, h) =>
  Float64Array.from({ length: NA }, (_, a) => Math.sin((2 * Math.PI * h * a) / NA)),
);
const SC = Array.from({ length: NH }, (_, h) =>
  Float64Array.from({ length: NS }, (_, s) => Math.cos((2 * Math.PI * h * s) / NS)),
);
const SS = Array.from({ length: NH }, (_, h) =>
  Float64Array.from({ length: NS }, (_, s) => Math.sin((2 * Math.PI * h * s) / NS)),
);

function describe(buf: Buffer, off: number, c: { cx: number; cy: number }, scale: number): Desc {
  const mean = new Float32Array(NR);
  const re = new Float32Array(NR * NH);
  const im = new Float32Array(NR * NH);
  const mag = new Float32Array(NR * NH);
  const ring = new Float64Array(NA);
  for (let k = 0; k < NR; k++) {
    const r = (R0 + DR * k) * scale;
    let sum = 0;
    let n = 0;
    for (let a = 0; a < NA; a++) {
      const th = (2 * Math.PI * a) / NA;
      const v = sample(buf, off, c.cx + r * Math.cos(th), c.cy + r * Math.sin(th));
      ring[a] = v;
      if (!Number.isNaN(v)) {
        sum += v;
        n++;
      }
    }
    const m = n ? sum / n : 0;
    for (let a = 0; a < NA; a++) ring[a] = Number.isNaN(ring[a]) ? 0 : ring[a] - m;
    mean[k] = m / 64;
    mag[k * NH] = mean[k];
    for (let h = 1; h < NH; h++) {
      let x = 0;
      let y = 0;
      for (let a = 0; a < NA; a++) {
        x += ring[a] * COS[h][a];
        y += ring[a] * SIN[h][a];
      }
      re[k * NH + h] = x / NA / 8;
      im[k * NH + h] = y / NA / 8;
      mag[k * NH + h] = Math.hypot(re[k * NH + h], im[k * NH + h]);
    }
  }
  return { mean, re, im, mag };
}

function magDist(a: Desc, b: Desc): number {
  let s = 0;
  for (let t = 0; t < a.mag.length; t++) s += (a.mag[t] - b.mag[t]) ** 2;
  return s;
}

/** Squared distance of the ring signals, minimised over rotation and mirror image. */
function phaseDist(a: Desc, b: Desc): number {
  let base = 0;
  let power = 0;
  for (let k = 0; k < NR; k++) base += (a.mean[k] - b.mean[k]) ** 2;
  const cr = new Float64Array(NH);
  const ci = new Float64Array(NH);
  const fr = new Float64Array(NH);
  const fi = new Float64Array(NH);
  for (let k = 0; k < NR; k++) {
    for (let h = 1; h < NH; h++) {
      const t = k * NH + h;
      power += a.re[t] ** 2 + a.im[t] ** 2 + b.re[t] ** 2 + b.im[t] ** 2;
      cr[h] += a.re[t] * b.re[t] + a.im[t] * b.im[t];
      ci[h] += a.im[t] * b.re[t] - a.re[t] * b.im[t];
      fr[h] += a.re[t] * b.re[t] - a.im[t] * b.im[t];
      fi[h] += -a.im[t] * b.re[t] - a.re[t] * b.im[t];
    }
  }
  let best = -Infinity;
  for (let s = 0; s < NS; s++) {
    let x = 0;
    let y = 0;
    for (let h = 1; h < NH; h++) {
      x += cr[h] * SC[h][s] + ci[h] * SS[h][s];
      y += fr[h] * SC[h][s] + fi[h] * SS[h][s];
    }
    best = Math.max(best, x, y);
  }
  return base + power - 2 * best;
}

class UnionFind {
  private parent = new Map<string, string>();
  find(x: string): string {
    const p = this.parent.get(x) ?? x;
    if (p === x) return x;
    const r = this.find(p);
    this.parent.set(x, r);
    return r;
  }
  union(a: string, b: string) {
    const [ra, rb] = [this.find(a), this.find(b)].sort();
    if (ra !== rb) this.parent.set(rb, ra);
  }
}

async function main() {
  const repoRoot = fileURLToPath(new URL('..', import.meta.url));
  const shared = resolve(process.argv[2] ?? resolve(repoRoot, '../shared'));
  const out = resolve(process.argv[3] ?? join(repoRoot, 'src/training/kaggle-photo-groups.tsv'));
  const kaggleDir = join(shared, 'data/kaggle-blood-cells');
  const bccdDir = join(shared, 'data/bccd/JPEGImages');
  const id = (photo: string) => photo.replace(/^BloodImage_/, '').replace(/\.jpg$/, '');

  const sources = new Map<string, { label: string; split: string }>();
  for (const line of readFileSync(join(kaggleDir, 'sources.csv'), 'utf8').trim().split('\n').slice(1)) {
    const [img, label, split] = line.split(',');
    sources.set(id(img), { label, split });
  }
  const photos = readdirSync(bccdDir)
    .filter((f) => sources.has(id(f)))
    .sort();
  const kaggle: { folder: string; file: string; path: string }[] = [];
  for (const split of ['TRAIN', 'TEST']) {
    for (const cls of readdirSync(join(kaggleDir, split)).sort()) {
      for (const file of readdirSync(join(kaggleDir, split, cls)).sort()) {
        kaggle.push({ folder: `${split}/${cls}`, file, path: join(kaggleDir, split, cls, file) });
      }
    }
  }
  const missing = [...sources.keys()].filter((p) => !photos.some((f) => id(f) === p));
  console.log(
    `${kaggle.length} Kaggle images, ${photos.length} BCCD photos (${missing.join(', ')} absent from BCCD)`,
  );

  const t0 = performance.now();
  const pb = await thumbnails(photos.map((f) => join(bccdDir, f)));
  const kb = await thumbnails(kaggle.map((k) => k.path));
  console.log(`decoded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const pid = photos.map(id);
  const pdesc = photos.map((_, i) => {
    const c = wbcCenter(pb, i * P * 3);
    return ZOOMS.map((z) => describe(pb, i * P * 3, c, 1 / z));
  });

  // Photos of the same field, whatever their split or label.
  const uf = new UnionFind();
  const z1 = ZOOMS.findIndex((z) => Math.abs(z - 1) < 0.02);
  const sameField: string[] = [];
  for (let i = 0; i < pid.length; i++) {
    for (let j = i + 1; j < pid.length; j++) {
      let d = Infinity;
      for (let zi = z1 - 2; zi <= z1 + 2; zi++) d = Math.min(d, phaseDist(pdesc[i][z1], pdesc[j][zi]));
      if (d < SAME_FIELD) {
        uf.union(pid[i], pid[j]);
        const tag = (p: string) => `${p} ${sources.get(p)!.split}/${sources.get(p)!.label}`;
        sameField.push(`${tag(pid[i])} ~ ${tag(pid[j])} (${d.toFixed(1)})`);
      }
    }
  }

  // Each image → best photo among those of its split and class.
  const assigned: string[] = [];
  const ambiguous = new Map<string, number>();
  for (let k = 0; k < kaggle.length; k++) {
    const [split, cls] = kaggle[k].folder.split('/');
    const c = wbcCenter(kb, k * P * 3);
    const d = describe(kb, k * P * 3, c, 1);
    const short: { i: number; m: number; zi: number }[] = [];
    pid.forEach((p, i) => {
      const s = sources.get(p)!;
      if (s.split !== split || s.label !== cls) return;
      let m = Infinity;
      let zi = 0;
      pdesc[i].forEach((pd, z) => {
        const v = magDist(d, pd);
        if (v < m) [m, zi] = [v, z];
      });
      short.push({ i, m, zi });
    });
    short.sort((a, b) => a.m - b.m);
    const ranked = short
      .slice(0, 10)
      .map(({ i, zi }) => {
        let m = Infinity;
        for (let z = Math.max(0, zi - 3); z <= Math.min(ZOOMS.length - 1, zi + 3); z++)
          m = Math.min(m, phaseDist(d, pdesc[i][z]));
        return { p: pid[i], m };
      })
      .sort((a, b) => a.m - b.m);
    assigned.push(ranked[0].p);
    if (ranked.length > 1 && ranked[0].m > AMBIGUOUS * ranked[1].m) {
      const key = `${kaggle[k].folder}\t${[ranked[0].p, ranked[1].p].sort().join('\t')}`;
      ambiguous.set(key, (ambiguous.get(key) ?? 0) + 1);
    }
  }

  // Two photos many images cannot tell apart would split one photo's copies between them: merge.
  const perFolder = new Map<string, number>();
  for (const k of kaggle) perFolder.set(k.folder, (perFolder.get(k.folder) ?? 0) + 1);
  const photosIn = (folder: string) => {
    const [split, cls] = folder.split('/');
    return [...sources.values()].filter((s) => s.split === split && s.label === cls).length;
  };
  const confused: string[] = [];
  for (const [key, n] of [...ambiguous].sort()) {
    const [folder, a, b] = key.split('\t');
    const copies = perFolder.get(folder)! / photosIn(folder);
    if (n >= Math.max(3, 0.25 * copies)) {
      uf.union(a, b);
      confused.push(`${folder} ${a} ~ ${b} (${n} ambiguous of ~${copies.toFixed(0)} copies each)`);
    }
  }

  const members = new Map<string, string[]>();
  for (const p of pid) {
    const r = uf.find(p);
    if (!members.has(r)) members.set(r, []);
    members.get(r)!.push(p);
  }
  const groupOf = (p: string) => `bccd/${members.get(uf.find(p))!.sort().join('+')}`;
  const lines = new Map<string, string[]>();
  kaggle.forEach((k, i) => {
    const key = `${groupOf(assigned[i])}\t${k.folder}`;
    if (!lines.has(key)) lines.set(key, []);
    lines.get(key)!.push(k.file.replace(/\.jpeg$/, ''));
  });

  const perFolderGroups = new Map<string, Set<string>>();
  for (const key of lines.keys()) {
    const [g, folder] = key.split('\t');
    if (!perFolderGroups.has(folder)) perFolderGroups.set(folder, new Set());
    perFolderGroups.get(folder)!.add(g);
  }
  const summary = [...perFolderGroups].map(([f, gs]) => `${f} ${gs.size}`).join(', ');
  const header = [
    '# Kaggle "Blood Cell Images" (dataset2-master) file → BCCD source-photo group.',
    `# Made by scripts/kaggle-photo-groups.ts from ${basename(kaggleDir)} and BCCD; do not edit by hand.`,
    '# Columns (tab-separated): group, <split>/<CLASS> folder, space-separated file stems (+ ".jpeg").',
    `# Groups per folder: ${summary}.`,
    '# Same field photographed twice (merged):',
    ...sameField.map((s) => `#   ${s}`),
    '# Photos merged because many images could not be told apart:',
    ...confused.map((s) => `#   ${s}`),
  ];
  const body = [...lines]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([key, stems]) => `${key}\t${stems.join(' ')}`);
  writeFileSync(out, [...header, ...body, ''].join('\n'));
  console.log(header.join('\n'));
  console.log(`wrote ${out} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

await main();
