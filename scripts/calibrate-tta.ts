/**
 * Adds the card's testTimeAugmentation block to a model trained before training wrote it, with the function
 * training now calls (calibrateTestTimeViews) on the same validation images (same data, classes, seed and
 * validation fraction as the card records). The model file is not touched; its sha256 is checked.
 *
 *   npx tsx scripts/calibrate-tta.ts <model dir> --data <dir> [--data <dir> …]
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { ModelCard } from '../src/model/types.js';
import { cropAt } from '../src/training/batches.js';
import { scanDatasets } from '../src/training/dataset.js';
import { prepareCrops } from '../src/training/finetune/crops.js';
import { groupedStratifiedSplit } from '../src/training/split.js';
import { calibrateTestTimeViews } from '../src/training/test-time.js';
import { writeAtomic } from '../src/training/files.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    data: { type: 'string', multiple: true },
    'val-fraction': { type: 'string', default: '0.2' },
    'review-accuracy': { type: 'string', default: '0.95' },
  },
});
const dir = positionals[0];
if (!dir || !values.data?.length) {
  console.error('usage: npx tsx scripts/calibrate-tta.ts <model dir> --data <dir> [--data <dir> …]');
  process.exit(2);
}
const cardPath = join(dir, 'model.json');
const card = JSON.parse(readFileSync(cardPath, 'utf8')) as ModelCard;
const model = readFileSync(join(dir, 'model.onnx'));
if (createHash('sha256').update(model).digest('hex') !== card.modelSha256) {
  console.error(`${dir}/model.onnx does not match its card.`);
  process.exit(1);
}
const ds = await scanDatasets(values.data, { classes: card.classes });
const split = groupedStratifiedSplit(ds.items, {
  valFraction: Number(values['val-fraction']),
  seed: card.training.seed,
});
// The crops training used, by the function it used: the primary cell of each validation image (images
// without one, or unreadable, are left out as they were there).
const { store, failed } = await prepareCrops(
  split.val.map((i) => ds.items[i]),
  card.preprocessing,
);
const dropped = new Set(failed.map((f) => split.val[f.index]));
const slot = new Map(split.val.map((item, j) => [item, j]));
const items = split.val.filter((i) => !dropped.has(i));
if (items.length !== card.validation.n) {
  console.error(
    `Validation has ${items.length} images here, the card says ${card.validation.n}: other data?`,
  );
  process.exit(1);
}
const { card: block, score } = await calibrateTestTimeViews(
  model,
  items,
  (i) => cropAt(store, slot.get(i)!),
  ds,
  {
    reviewTargetAccuracy: Number(values['review-accuracy']),
    onProgress: (d, t) => process.stderr.write(`\r${d}/${t}`),
  },
);
process.stderr.write('\n');
// Key order as training writes it: the block right after `validation`.
const out: Record<string, unknown> = {};
for (const [k, v] of Object.entries(card)) {
  if (k === 'testTimeAugmentation') continue;
  out[k] = v;
  if (k === 'validation') out.testTimeAugmentation = block;
}
writeAtomic(cardPath, Buffer.from(JSON.stringify(out, null, 2) + '\n'));
console.log(
  `one view: accuracy ${card.validation.accuracy.toFixed(4)}, T ${card.temperature.toFixed(3)}; ` +
    `8 views: accuracy ${score.metrics.accuracy.toFixed(4)}, macro-F1 ${score.metrics.macroF1.toFixed(4)}, ` +
    `ECE ${score.metrics.ece.toFixed(4)}, T ${block.temperature.toFixed(3)}, review below ${block.reviewThreshold.toFixed(3)}; ` +
    JSON.stringify(block.validation.perSource),
);
