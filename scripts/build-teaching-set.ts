/**
 * Builds teaching/: the expert-labelled PBC cells practice mode serves on a fresh install (no reviewed cases
 * yet). 15 cells per PBC class, chosen with a fixed seed, one from each of 15 equal slices of the class's
 * sorted file list (so the set spans the source and, for ig and neutrophil, its sub-types), skipping cells that
 * look almost the same as one already chosen. Images are the published JPEGs, byte for byte: shrunk and
 * recompressed copies (300 px, quality 85) looked like another lab to the model's image check, which measures
 * scale and compression (the bundled model flagged 59 of 120 unfamiliar_image, against 4 of the originals).
 *
 * Usage: npx tsx scripts/build-teaching-set.ts [--source ../shared/data/pbc] [--out teaching]
 * Rebuilding from the same source gives the same files.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { createRng, shuffled } from '../src/imaging/random.js';
import {
  TEACHING_CLASSES,
  TEACHING_LICENSE,
  TEACHING_SOURCE,
  type TeachingCell,
  type TeachingManifest,
} from '../src/teaching/manifest.js';

const PER_CLASS = 15;
const SEED = 20261202;
/** Two cells whose 24×24 grey thumbnails correlate above this are treated as near-duplicates. */
const NEAR_DUPLICATE = 0.95;

/** PBC file-name prefixes, spelt out for the manifest (the class folder says the rest). */
const SUBTYPES: Record<string, string> = {
  BNE: 'band neutrophil',
  SNE: 'segmented neutrophil',
  MMY: 'metamyelocyte',
  MY: 'myelocyte',
  PMY: 'promyelocyte',
};

const { values } = parseArgs({
  options: {
    source: { type: 'string', default: '../shared/data/pbc' },
    out: { type: 'string', default: 'teaching' },
  },
});
const source = resolve(values.source!);
const out = resolve(values.out!);
if (!existsSync(source)) {
  console.error(`No PBC folder at ${source} (pass --source).`);
  process.exit(1);
}

/** Zero-mean, unit-length grey thumbnail: the dot product of two is their correlation. */
async function signature(file: string): Promise<Float64Array> {
  const px = await sharp(file).greyscale().resize(24, 24, { fit: 'fill' }).raw().toBuffer();
  const v = Float64Array.from(px);
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  let norm = 0;
  for (let i = 0; i < v.length; i++) {
    v[i] -= mean;
    norm += v[i] * v[i];
  }
  norm = Math.sqrt(norm) || 1;
  for (let i = 0; i < v.length; i++) v[i] /= norm;
  return v;
}

function correlation(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

async function chooseClass(label: string, rngSeed: number): Promise<string[]> {
  const files = readdirSync(join(source, label))
    .filter((f) => /\.(jpe?g|png)$/i.test(f))
    .sort();
  if (files.length < PER_CLASS) throw new Error(`${label}: only ${files.length} images`);
  const rng = createRng(rngSeed);
  const chosen: { file: string; sig: Float64Array; sha: string }[] = [];
  for (let s = 0; s < PER_CLASS; s++) {
    const slice = files.slice(
      Math.floor((s * files.length) / PER_CLASS),
      Math.floor(((s + 1) * files.length) / PER_CLASS),
    );
    for (const file of shuffled(slice, rng)) {
      const path = join(source, label, file);
      const meta = await sharp(path).metadata();
      // A few PBC crops are not the usual 360×363 framing; keep the set uniform.
      if (!meta.width || !meta.height || Math.abs(meta.width - meta.height) > 0.05 * meta.width) continue;
      const sig = await signature(path);
      const sha = createHash('sha256')
        .update(await sharp(path).raw().toBuffer())
        .digest('hex');
      if (chosen.some((c) => c.sha === sha || correlation(c.sig, sig) > NEAR_DUPLICATE)) continue;
      chosen.push({ file, sig, sha });
      break;
    }
  }
  if (chosen.length < PER_CLASS) throw new Error(`${label}: found only ${chosen.length} distinct cells`);
  return chosen.map((c) => c.file);
}

rmSync(join(out, 'images'), { recursive: true, force: true });
mkdirSync(join(out, 'images'), { recursive: true });
const cells: TeachingCell[] = [];
let bytes = 0;
for (const [k, label] of TEACHING_CLASSES.entries()) {
  const files = await chooseClass(label, SEED + k);
  for (const sourceFile of files) {
    // Opaque ids: an image URL or file name that said "basophil" would give the answer away.
    const id = `pbc-${createHash('sha256').update(sourceFile).digest('hex').slice(0, 8)}`;
    const data = readFileSync(join(source, label, sourceFile));
    const info = await sharp(data).metadata();
    writeFileSync(join(out, 'images', `${id}.jpg`), data);
    bytes += data.length;
    const prefix = sourceFile.split('_')[0];
    cells.push({
      id,
      file: `images/${id}.jpg`,
      label,
      ...(SUBTYPES[prefix] ? { subtype: SUBTYPES[prefix] } : {}),
      sourceFile,
      width: info.width!,
      height: info.height!,
    });
  }
  console.log(`${label}: ${files.join(' ')}`);
}
const manifest: TeachingManifest = {
  source: TEACHING_SOURCE,
  license: TEACHING_LICENSE,
  modified: 'None: the published JPEG files, byte for byte.',
  seed: SEED,
  cells,
};
writeFileSync(join(out, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
console.log(`${cells.length} cells, ${(bytes / 1024).toFixed(0)} KiB of images in ${out}`);
