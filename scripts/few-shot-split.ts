/**
 * Splits one lab's images into a few labelled ones (to adapt a model with) and the rest (to score it on), as
 * folders of symlinks: <out>/few/TRAIN/<class>/ and <out>/rest/TRAIN/<class>/, the four classes only (the
 * split itself: scripts/few-shot.ts).
 *
 *   tsx scripts/few-shot-split.ts pbc <pbc-dir> <out> <images per class> [seed]
 *   tsx scripts/few-shot-split.ts kaggle <kaggle TRAIN dir> <out> <photos per class> [seed]
 */
import { fewShotSplit } from './few-shot.js';

const [kind, srcArg, outArg, nArg, seedArg] = process.argv.slice(2);
const n = Number(nArg);
const seed = Number(seedArg ?? 1);
if ((kind !== 'pbc' && kind !== 'kaggle') || !srcArg || !outArg || !(n >= 1) || !Number.isInteger(seed)) {
  console.error(
    'usage: tsx scripts/few-shot-split.ts pbc|kaggle <source dir> <out dir> <n per class> [seed]',
  );
  process.exit(2);
}
console.log(JSON.stringify(await fewShotSplit(kind, srcArg, outArg, n, seed)));
