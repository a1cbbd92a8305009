/**
 * The int8 model against the float model it came from, on the bundled model's own grouped validation split
 * (Kaggle TRAIN + PBC, valFraction 0.2, seed 42, exactly as `train` split them; Kaggle TEST is never read).
 *
 * Usage:
 *   npx tsx scripts/bench-int8.ts --calibration-set <dir>
 *       writes <dir>/<source>/<class>/<file> links to the validation images (what `export --int8 --data` reads)
 *   npx tsx scripts/bench-int8.ts [--float models/model.onnx] --int8 a.onnx[,b.onnx…] [--limit n] [--speed n]
 *       (--limit n: about n images, evenly spread over the split; --speed n: images timed;
 *       --speed-only: skip the scoring)
 *       scores every model on the same prepared crops (one decode per image), then times them side by side:
 *       the network alone (one crop per run, and runs of 8) and predict end-to-end (file → answer).
 * Writes .cache/bench-int8/result.json and prints a Markdown table.
 */
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { analyzeImage, runPrepared } from '../src/model/analyzer.js';
import { Classifier } from '../src/model/classifier.js';
import { prepareImage, writeInput, type PreparedImage } from '../src/model/inputs.js';
import { scanDatasets } from '../src/training/dataset.js';
import { evaluatePredictions } from '../src/training/metrics.js';
import { reviewStats, type ReviewedAnswer } from '../src/training/review.js';
import { groupedStratifiedSplit } from '../src/training/split.js';

const { values: args } = parseArgs({
  options: {
    'calibration-set': { type: 'string' },
    float: { type: 'string', default: 'models/model.onnx' },
    int8: { type: 'string' },
    limit: { type: 'string' },
    speed: { type: 'string', default: '64' },
    'speed-only': { type: 'boolean', default: false },
  },
});
const SHARED = resolve(process.env.SHARED ?? '../shared');
const SOURCES = [join(SHARED, 'data/kaggle-blood-cells/TRAIN'), join(SHARED, 'data/pbc')];

const ds = await scanDatasets(SOURCES);
const { val } = groupedStratifiedSplit(ds.items, { valFraction: 0.2, seed: 42 });
const items = val.map((i) => ds.items[i]);
console.error(`validation: ${items.length} images`);

if (args['calibration-set']) {
  const root = resolve(args['calibration-set']);
  rmSync(root, { recursive: true, force: true });
  for (const it of items) {
    const dir = join(root, ds.sources[it.source].name, it.label);
    mkdirSync(dir, { recursive: true });
    symlinkSync(it.path, join(dir, basename(it.path)));
  }
  console.log(`Linked ${items.length} validation images under ${root}`);
  process.exit(0);
}

const paths = [args.float!, ...(args.int8 ?? '').split(',').filter(Boolean)];
const models = await Promise.all(paths.map((p) => Classifier.load(p)));
// --limit n: every (N/n)-th image, so both labs and every class stay represented.
const stride = args['speed-only']
  ? Math.floor(items.length / Number(args.speed))
  : args.limit
    ? Math.max(1, Math.floor(items.length / Number(args.limit)))
    : 1;
const scored = items.filter((_, i) => i % stride === 0);
const classes = models[0].classes;
const k = classes.length;

interface Tally {
  truth: number[];
  rows: (number[] | null)[];
  answers: ReviewedAnswer[];
  agree: number;
  flagsAgree: number;
  dConf: number[];
  dCell: number[];
  dImage: number[];
}
const tallies: Tally[] = models.map(() => ({
  truth: [],
  rows: [],
  answers: [],
  agree: 0,
  flagsAgree: 0,
  dConf: [],
  dCell: [],
  dImage: [],
}));
const t0 = performance.now();
for (let i = 0; i < (args['speed-only'] ? 0 : scored.length); i++) {
  const it = scored[i];
  let prepared: PreparedImage;
  try {
    prepared = await prepareImage(it.path, models[0].card.preprocessing);
  } catch {
    continue;
  }
  const results = await Promise.all(models.map((m) => runPrepared(m, [prepared], {}).then((r) => r[0])));
  const ref = results[0];
  results.forEach((r, j) => {
    const t = tallies[j];
    t.truth.push(classes.indexOf(it.label));
    t.rows.push(r.label === null ? null : classes.map((c) => r.probabilities[c]));
    t.answers.push({
      correct: r.label === it.label,
      needsReview: r.needsReview,
      reviewReasons: r.reviewReasons,
      confidence: r.confidence,
    });
    if (r.label === ref.label) t.agree++;
    if (r.reviewReasons.join() === ref.reviewReasons.join()) t.flagsAgree++;
    t.dConf.push(Math.abs(r.confidence - ref.confidence));
    if (r.distance && ref.distance) {
      t.dCell.push(Math.abs(r.distance.cell - ref.distance.cell));
      t.dImage.push(Math.abs(r.distance.image - ref.distance.image));
    }
  });
  if ((i + 1) % 250 === 0)
    console.error(`${i + 1}/${scored.length} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
}

const quantile = (a: number[], q: number) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN;
};
const quality = (args['speed-only'] ? [] : tallies).map((t, j) => {
  const n = t.truth.length;
  const probs = new Float32Array(n * k);
  t.rows.forEach((r, i) => r && probs.set(r, i * k));
  const m = evaluatePredictions(t.truth, probs, classes, { unanswered: t.rows.map((r) => r === null) });
  const review = reviewStats(t.answers);
  const perSource: Record<string, number> = {};
  for (const [si, src] of ds.sources.entries()) {
    const idx = scored.map((it, i) => (it.source === si ? i : -1)).filter((i) => i >= 0 && i < n);
    perSource[src.name] = idx.filter((i) => t.answers[i].correct).length / idx.length;
  }
  return {
    model: paths[j],
    n,
    accuracy: m.accuracy,
    macroF1: m.macroF1,
    ece: m.ece,
    perSource,
    review,
    agreeWithFloat: t.agree / n,
    sameFlagsAsFloat: t.flagsAgree / n,
    confidenceDelta: { median: quantile(t.dConf, 0.5), p99: quantile(t.dConf, 0.99) },
    cellDistanceDelta: { median: quantile(t.dCell, 0.5), p99: quantile(t.dCell, 0.99) },
    imageDistanceDelta: { median: quantile(t.dImage, 0.5), p99: quantile(t.dImage, 0.99) },
  };
});

// Speed: the same crops and files through each model in turn, round-robin, so load from other work on the
// machine falls on every model alike.
const nSpeed = Math.min(Number(args.speed), scored.length);
const crops: Float32Array[] = [];
for (const it of scored.slice(0, nSpeed)) {
  const p = await prepareImage(it.path, models[0].card.preprocessing, { primaryOnly: true });
  if (!p.regions.length) continue;
  const x = new Float32Array(3 * 224 * 224);
  writeInput(p.regions[0].pixels, x, 0);
  crops.push(x);
}
const batch8 = new Float32Array(8 * 3 * 224 * 224);
crops.slice(0, 8).forEach((c, i) => batch8.set(c, i * c.length));
const times = models.map(() => ({ one: [] as number[], eight: [] as number[], e2e: [] as number[] }));
for (const m of models) await m.run(crops[0], 1); // warm-up
for (let i = 0; i < crops.length; i++)
  for (const [j, m] of models.entries()) {
    const s = performance.now();
    await m.run(crops[i], 1);
    times[j].one.push(performance.now() - s);
  }
for (let r = 0; r < 24; r++)
  for (const [j, m] of models.entries()) {
    const s = performance.now();
    await m.run(batch8, 8);
    times[j].eight.push((performance.now() - s) / 8);
  }
for (const it of scored.slice(0, nSpeed))
  for (const [j, m] of models.entries()) {
    const s = performance.now();
    await analyzeImage(m, it.path);
    times[j].e2e.push(performance.now() - s);
  }
const speed = times.map((t, j) => ({
  model: paths[j],
  networkMsPerCrop: quantile(t.one, 0.5),
  networkMsPerCropBatch8: quantile(t.eight, 0.5),
  predictMsPerImage: quantile(t.e2e, 0.5),
}));
for (const m of models) await m.close();

const result = { date: new Date().toISOString(), quality, speed };
mkdirSync('.cache/bench-int8', { recursive: true });
writeFileSync('.cache/bench-int8/result.json', JSON.stringify(result, null, 2));
if (args['speed-only']) {
  console.log(
    '| model | network ms/crop, 1 per run | network ms/crop, 8 per run | predict ms/image (file → answer) |',
  );
  console.log('| --- | --- | --- | --- |');
  for (const s of speed)
    console.log(
      `| ${s.model} | ${s.networkMsPerCrop.toFixed(2)} | ${s.networkMsPerCropBatch8.toFixed(2)} | ${s.predictMsPerImage.toFixed(2)} |`,
    );
  process.exit(0);
}
const pct = (x: number) => `${(100 * x).toFixed(2)} %`;
console.log(
  '| model | n | accuracy | Kaggle / PBC | macro-F1 | ECE | review rate | low conf / unfam. cell / unfam. image | silent errors | same label as float | same flags | network ms/crop (1 / batch 8) | predict ms/image |',
);
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
quality.forEach((q, j) => {
  const s = speed[j];
  const src = Object.values(q.perSource).map(pct).join(' / ');
  const by = q.review.byReason;
  console.log(
    `| ${q.model} | ${q.n} | ${pct(q.accuracy)} | ${src} | ${pct(q.macroF1)} | ${q.ece.toFixed(4)} | ${pct(q.review.rate)} | ` +
      `${pct(by.low_confidence)} / ${pct(by.unfamiliar_cell)} / ${pct(by.unfamiliar_image)} | ${pct(q.review.silentErrorRate)} | ` +
      `${pct(q.agreeWithFloat)} | ${pct(q.sameFlagsAsFloat)} | ${s.networkMsPerCrop.toFixed(1)} / ${s.networkMsPerCropBatch8.toFixed(1)} | ${s.predictMsPerImage.toFixed(1)} |`,
  );
});
console.log(
  JSON.stringify(
    quality.map((q) => ({
      model: q.model,
      confidenceDelta: q.confidenceDelta,
      cellDistanceDelta: q.cellDistanceDelta,
      imageDistanceDelta: q.imageDistanceDelta,
    })),
  ),
);
