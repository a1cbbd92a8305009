/**
 * Fine-tuning loop benchmark (not part of the test suite): ms per image of whole training steps on real cell
 * crops (Kaggle TRAIN + PBC from ../shared): augmentation, normalisation, the training graph and both AdamW
 * updates, with augmentation inline or in the helper thread (overlapped with ONNX Runtime).
 *
 *   npx tsx scripts/bench-finetune-loop.ts [batch:workers:fromBlock ...]     (default 16:0:13 16:1:13 32:1:13)
 *
 * Other work on the machine inflates every number: it prints the load average beside each.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { loadTfliteBackbone, mobileNetV2Spec } from '../src/model/backbone.js';
import { prepareImage } from '../src/model/inputs.js';
import { TrainingSession } from '../src/model/training-graph/session.js';
import { HEAD_BLOCK } from '../src/model/net/spec.js';
import { SHARED, TFLITE } from '../src/testing/shared.js';
import { augmentSeed, createBatchMaker, createCropStore, fillBatch } from '../src/training/batches.js';
import { AdamW, parametersFrom } from '../src/training/optimizer.js';
import { preprocessingFor } from '../src/training/model-card.js';

const KAGGLE = join(SHARED, 'data/kaggle-blood-cells/TRAIN');
if (!existsSync(TFLITE) || !existsSync(KAGGLE)) {
  console.error(`Needs ${TFLITE} and ${KAGGLE} (../shared beside the repository).`);
  process.exit(1);
}
const files: string[] = [];
for (const c of ['EOSINOPHIL', 'LYMPHOCYTE', 'MONOCYTE', 'NEUTROPHIL'])
  files.push(
    ...readdirSync(join(KAGGLE, c))
      .slice(0, 40)
      .map((f) => join(KAGGLE, c, f)),
  );
for (const c of ['eosinophil', 'lymphocyte', 'monocyte', 'neutrophil'])
  files.push(
    ...readdirSync(join(SHARED, 'data/pbc', c))
      .slice(0, 20)
      .map((f) => join(SHARED, 'data/pbc', c, f)),
  );

const prep = preprocessingFor('cell', 0);
const store = createCropStore(files.length, 224);
const ok: number[] = [];
let t = performance.now();
for (const [i, f] of files.entries()) {
  const p = await prepareImage(readFileSync(f), prep, { primaryOnly: true });
  if (p.regions.length === 0) continue;
  store.data.set(p.regions[0].pixels.data, i * 224 * 224 * 3);
  ok.push(i);
}
console.log(
  `decode + locate + crop: ${((performance.now() - t) / files.length).toFixed(1)} ms/img (once per run)`,
);
const probe = ok.slice(0, 32);
const out = new Float32Array(probe.length * 3 * 224 * 224);
fillBatch(store, probe, probe, out);
t = performance.now();
for (let r = 1; r <= 3; r++)
  fillBatch(
    store,
    probe,
    probe.map((i) => augmentSeed(1, r, i)),
    out,
  );
console.log(`augment + normalise alone: ${((performance.now() - t) / (3 * probe.length)).toFixed(1)} ms/img`);

const spec = mobileNetV2Spec(loadTfliteBackbone(readFileSync(TFLITE)), { classes: 4 });
spec.head.weight.forEach((_, i, w) => (w[i] = Math.sin(i) * 0.01));
const configs = process.argv.slice(2).map((s) => s.split(':').map(Number));
for (const [batch, workers, from] of configs.length
  ? configs
  : [
      [16, 0, 13],
      [16, 1, 13],
      [32, 1, 13],
    ]) {
  const session = await TrainingSession.create(spec, {
    trainFromBlock: from,
    frozenPrefix: 'separate',
    batchSize: batch,
    threads: 2,
  });
  const head = new AdamW(parametersFrom(session.trainable.filter((p) => p.block === HEAD_BLOCK)));
  const body = new AdamW(parametersFrom(session.trainable.filter((p) => p.block !== HEAD_BLOCK)));
  const maker = createBatchMaker(store, { workers: workers as 0 | 1 });
  const steps = 12;
  const batches = Array.from({ length: steps + 2 }, (_, b) =>
    Array.from({ length: batch }, (_, j) => ok[(b * batch + j) % ok.length]),
  );
  const targets = new Float32Array(batch * 4);
  for (let j = 0; j < batch; j++) targets[j * 4 + (j % 4)] = 1;
  const request = (b: number) =>
    maker.make(
      batches[b],
      batches[b].map((i) => augmentSeed(1, b, i)),
    );
  let pending = request(0);
  let start = 0;
  for (let b = 0; b < batches.length; b++) {
    if (b === 2) start = performance.now(); // two warm-up steps: ORT's arena settles
    const images = await pending;
    if (b + 1 < batches.length) pending = request(b + 1);
    const r = await session.step({ images, n: batch, targets });
    body.step(r.grads, 1e-9);
    head.step(r.grads, 1e-9);
  }
  const ms = (performance.now() - start) / (steps * batch);
  console.log(
    `batch ${batch}, from block ${from}, augmentation ${workers ? 'in the helper thread' : 'inline'}: ` +
      `${ms.toFixed(1)} ms/img (load ${loadavg()[0].toFixed(1)})`,
  );
  await maker.close();
  await session.close();
}
