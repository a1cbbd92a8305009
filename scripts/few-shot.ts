/**
 * The few-shot split of one lab's images (scripts/few-shot-split.ts, scripts/adapt-api-study.ts): a few labelled
 * images per class (to adapt a model with) and the rest (to score it on), as folders of symlinks:
 * <out>/few/TRAIN/<class>/ and <out>/rest/TRAIN/<class>/, the four classes only.
 *
 * Kaggle TRAIN holds ~30 augmented copies of each photo, so it is split by source photo (every copy of a
 * chosen photo goes to `few`); the `TRAIN` folder name keeps the photo-group table working for validation.
 */
import { mkdirSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createRng, shuffled } from '../src/imaging/random.js';
import { IMAGE_EXTENSIONS } from '../src/training/dataset.js';
import { loadKaggleTable } from '../src/training/photo-groups.js';

export const FEW_SHOT_CLASSES = ['eosinophil', 'lymphocyte', 'monocyte', 'neutrophil'];

export type FewShotCounts = Record<string, { few: number; rest: number }>;

/** Writes the split of `srcArg` into `outArg` (replacing it); `n` images (PBC) or photos (Kaggle) per class. */
export async function fewShotSplit(
  kind: 'pbc' | 'kaggle',
  srcArg: string,
  outArg: string,
  n: number,
  seed: number,
): Promise<FewShotCounts> {
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
  const listing = FEW_SHOT_CLASSES.map((label) => {
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
  const counts: FewShotCounts = {};
  for (const { label, folder, files } of listing) {
    counts[label] = { few: 0, rest: 0 };
    for (const f of files) {
      const part = chosen.has(groupOf(folder, f)) ? 'few' : 'rest';
      link(part, folder, f);
      counts[label][part]++;
    }
  }
  return counts;
}
