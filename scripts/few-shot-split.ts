/**
 * Splits one lab's images into a few labelled ones (to adapt a model with) and the rest (to score it on), as
 * folders of symlinks: <out>/few/TRAIN/<class>/ and <out>/rest/TRAIN/<class>/, the four classes only.
 *
 *   tsx scripts/few-shot-split.ts pbc <pbc-dir> <out> <images per class> [seed]
 *   tsx scripts/few-shot-split.ts kaggle <kaggle TRAIN dir> <out> <photos per class> [seed]
 *
 * Kaggle TRAIN holds ~30 augmented copies of each photo, so it is split by source photo (every copy of a
 * chosen photo goes to `few`); the `TRAIN` folder name keeps the photo-group table working for validation.
 */
import { mkdirSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createRng, shuffled } from '../src/imaging/random.js';
import { IMAGE_EXTENSIONS } from '../src/training/dataset.js';
import { loadKaggleTable } from '../src/training/photo-groups.js';

const CLASSES = ['eosinophil', 'lymphocyte', 'monocyte', 'neutrophil'];

const [kind, srcArg, outArg, nArg, seedArg] = process.argv.slice(2);
const n = Number(nArg);
const seed = Number(seedArg ?? 1);
if (!['pbc', 'kaggle'].includes(kind) || !srcArg || !outArg || !(n >= 1) || !Number.isInteger(seed)) {
  console.error(
    'usage: tsx scripts/few-shot-split.ts pbc|kaggle <source dir> <out dir> <n per class> [seed]',
  );
  process.exit(2);
}
const src = resolve(srcArg);
const out = resolve(outArg);
rmSync(out, { recursive: true, force: true });

/** The class folder of `src` whose name is `label` in any case. */
const folderOf = (label: string) => {
  const f = readdirSync(src).find((d) => d.toLowerCase() === label);
  if (!f) throw new Error(`${src} has no ${label} folder`);
  return f;
};
const link = (part: 'few' | 'rest', folder: string, file: string) => {
  const dir = join(out, part, 'TRAIN', folder);
  mkdirSync(dir, { recursive: true });
  symlinkSync(join(src, folder, file), join(dir, file));
};

const table = kind === 'kaggle' ? await loadKaggleTable() : null;
if (kind === 'kaggle' && !table) throw new Error('src/training/kaggle-photo-groups.tsv is missing');
const listing = CLASSES.map((label) => {
  const folder = folderOf(label);
  const files = readdirSync(join(src, folder))
    .filter((f) => IMAGE_EXTENSIONS.has(f.slice(f.lastIndexOf('.')).toLowerCase()))
    .sort();
  return { label, folder, files };
});
// PBC: each image its own group. Kaggle: the source photo; a photo filed under two classes goes wholly to `few`.
const groupOf = (folder: string, f: string) => table?.get(`TRAIN/${folder}/${f}`) ?? `${folder}/${f}`;
const chosen = new Set(
  listing.flatMap(({ folder, files }) =>
    shuffled([...new Set(files.map((f) => groupOf(folder, f)))].sort(), createRng(seed)).slice(0, n),
  ),
);
const counts: Record<string, { few: number; rest: number }> = {};
for (const { label, folder, files } of listing) {
  counts[label] = { few: 0, rest: 0 };
  for (const f of files) {
    const part = chosen.has(groupOf(folder, f)) ? 'few' : 'rest';
    link(part, folder, f);
    counts[label][part]++;
  }
}
console.log(JSON.stringify(counts));
