/**
 * Frozen MobileNetV2 features (all four pooled blocks, one unaugmented cell crop per image) of Kaggle TRAIN
 * and PBC, with each row's class, lab and side of the grouped split (valFraction 0.2, seed 42, as `train`
 * draws it), for the leave-one-class-out score study (scores.py). Kaggle TEST is never read.
 *
 * Usage: npx tsx scripts/loco-study/dump-features.ts   → .cache/loco/features.{bin,json}
 *   BACKBONE=models/model.onnx OUT=.cache/loco-ft: the same rows through another model's backbone (the
 *   bundled fine-tuned one: it saw every class, so a left-out class's figures are an upper bound).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildBackboneModel } from '../../src/model/backbone.js';
import { FeatureExtractor } from '../../src/model/feature-extractor.js';
import { scanDatasets } from '../../src/training/dataset.js';
import { computeFeatures } from '../../src/training/feature-cache.js';
import { writeAtomic } from '../../src/training/files.js';
import { preprocessingFor } from '../../src/training/model-card.js';
import { groupedStratifiedSplit } from '../../src/training/split.js';

const SHARED = resolve(process.env.SHARED ?? '../shared');
const backbone = resolve(process.env.BACKBONE ?? '.cache/backbone.onnx');
const OUT = process.env.OUT ?? '.cache/loco';
if (!existsSync(backbone))
  writeAtomic(
    backbone,
    buildBackboneModel(readFileSync(join(SHARED, 'weights/mobilenet_v2_1.0_224_quant.tflite'))),
  );
const ds = await scanDatasets([join(SHARED, 'data/kaggle-blood-cells/TRAIN'), join(SHARED, 'data/pbc')]);
const extractor = await FeatureExtractor.load(backbone);
const f = await computeFeatures(ds.items, extractor, preprocessingFor('cell', 0), {
  views: 1,
  seed: 42,
  cacheDir: resolve('.cache/features'),
  onProgress: (done, total) => {
    if (done % 1000 === 0) console.error(`${done} / ${total}`);
  },
});
await extractor.close();
const split = groupedStratifiedSplit(ds.items, { valFraction: 0.2, seed: 42 });
const isVal = new Uint8Array(ds.items.length);
for (const i of split.val) isVal[i] = 1;
mkdirSync(OUT, { recursive: true });
writeFileSync(join(OUT, 'features.bin'), Buffer.from(f.x.buffer, f.x.byteOffset, f.x.byteLength));
const rows = Array.from(f.item, (i) => ({
  label: ds.items[i].label,
  source: ds.sources[ds.items[i].source].name,
  val: isVal[i],
}));
writeFileSync(
  join(OUT, 'features.json'),
  JSON.stringify({ n: f.n, d: f.d, dims: extractor.blockDims, rows, failed: f.failed.length }),
);
console.error(`${f.n} rows of ${f.d} features; ${f.failed.length} images gave no cell`);
