/**
 * Frozen-backbone training: cached backbone features of every image (and its augmented views), a softmax
 * head with l2 chosen on grouped validation, calibration and the one-file model with its card.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DatasetError } from '../errors.js';
import { BACKBONE_ATTRIBUTION } from '../model/backbone.js';
import { buildClassifierModel } from '../model/classifier-graph.js';
import { FeatureExtractor, resolveBackbonePath } from '../model/feature-extractor.js';
import { prepareImage } from '../model/inputs.js';
import type { ModelCard, TestTimeAugmentation } from '../model/types.js';
import { scanDatasets, type Dataset } from './dataset.js';
import { computeFeatures, type FeatureSet } from './feature-cache.js';
import { writeAtomic } from './files.js';
import { fitSoftmaxHead, foldStandardisation, headLogits, selectL2, type L2Score } from './head.js';
import type { Metrics } from './metrics.js';
import { cardHeader, INTENDED_USE, MODEL_LICENSE, preprocessingFor, trainingRecord } from './model-card.js';
import { groupedStratifiedSplit } from './split.js';
import { calibrateHeldOut } from './held-out.js';
import { calibrateTestTimeViews } from './test-time.js';
import { balanceWeights } from './weights.js';

/**
 * Decades from strong to weak regularisation: with few source photos per class, strong regularisation often
 * wins. A finer grid (1, 0.3, …, 0.001) chose the same l2 on the default data and took twice as long.
 */
export const DEFAULT_L2_GRID = [1, 0.1, 0.01, 0.001];

/**
 * L-BFGS gradient tolerance for training runs: 1e-3 instead of the head's 1e-4 default changed validation
 * accuracy by < 0.1 point on the default data and keeps training from cached features under 30 s.
 */
export const DEFAULT_HEAD_TOL = 1e-3;

export interface TrainOptions {
  data: string[];
  out: string;
  classes?: string[];
  backbone?: string;
  crop: 'whole' | 'cell';
  cropPadding: number;
  views: number;
  seed: number;
  valFraction: number;
  l2Grid?: number[];
  /** L-BFGS stops when the largest gradient entry is below this (head.ts default when unset). */
  headTol?: number;
  /** Relative weight of each source (by source name) in the loss; default equal. */
  sourceWeights?: Record<string, number>;
  /** Accuracy wanted among predictions NOT flagged for review; sets the review threshold on validation. */
  reviewTargetAccuracy: number;
  cacheDir: string;
  name: string;
  /** Refit the head on training + validation rows with the chosen l2 before export. */
  refit: boolean;
  /** Calibrate the model for its 8 test-time views (the card's testTimeAugmentation); default true. */
  testTimeViews?: boolean;
  onStage?: (stage: string) => void;
  onFeatures?: (done: number, total: number, cached: number) => void;
  onViews?: (done: number, total: number) => void;
}

export interface TrainResult {
  card: ModelCard;
  modelPath: string;
  cardPath: string;
  validation: Metrics;
  l2Table: L2Score[];
  dataset: Dataset;
  failed: FeatureSet['failed'];
  seconds: { features: number; head: number; total: number };
}

/** Datasets → cached backbone features → head (l2 chosen on grouped validation) → calibration → one-file model. */
export async function trainModel(o: TrainOptions): Promise<TrainResult> {
  const t0 = performance.now();
  const stage = o.onStage ?? (() => {});
  stage('Scanning data');
  const ds = await scanDatasets(o.data, { classes: o.classes });
  const k = ds.classes.length;
  if (k < 2) throw new DatasetError('Training needs at least two classes.');
  const { train, val } = groupedStratifiedSplit(ds.items, { valFraction: o.valFraction, seed: o.seed });
  if (train.length === 0)
    throw new DatasetError('The training split is empty: add images (or groups) per class.');
  if (val.length === 0)
    throw new DatasetError('The validation split is empty: add images (or groups) per class.');

  const extractor = await FeatureExtractor.load(resolveBackbonePath(o.backbone));
  const prep = preprocessingFor(o.crop, o.cropPadding);
  stage(`Backbone features (${o.views} view${o.views > 1 ? 's' : ''} per image)`);
  const tf = performance.now();
  const feats = await computeFeatures(ds.items, extractor, prep, {
    views: o.views,
    seed: o.seed,
    cacheDir: o.cacheDir,
    onProgress: o.onFeatures,
  });
  await extractor.close();
  const featureSeconds = (performance.now() - tf) / 1000;

  const itemWeights = balanceWeights(ds.items, { sourceWeights: o.sourceWeights });
  const isVal = new Uint8Array(ds.items.length);
  for (const i of val) isVal[i] = 1;
  const pick = (keep: (r: number) => boolean) => {
    const rows: number[] = [];
    for (let r = 0; r < feats.n; r++) if (keep(r)) rows.push(r);
    const x = new Float32Array(rows.length * feats.d);
    const y = new Int32Array(rows.length);
    const w = new Float32Array(rows.length);
    rows.forEach((r, j) => {
      x.set(feats.x.subarray(r * feats.d, (r + 1) * feats.d), j * feats.d);
      const it = feats.item[r];
      y[j] = ds.items[it].labelIndex;
      // Views share their image's weight, so augmentation adds variety, not weight.
      w[j] = itemWeights[it] / o.views;
    });
    return { x, n: rows.length, y, sampleWeights: w, rows };
  };
  const trainSet = pick((r) => !isVal[feats.item[r]]);
  // Validation sees each image once, unaugmented, as a user's image would be seen.
  const valSet = pick((r) => isVal[feats.item[r]] === 1 && feats.view[r] === 0);
  if (trainSet.n === 0 || valSet.n === 0)
    throw new DatasetError('No usable images on one side of the split.');

  stage('Training the head (choosing l2 on validation)');
  const th = performance.now();
  const sel = selectL2(trainSet, valSet, feats.d, k, {
    grid: o.l2Grid ?? DEFAULT_L2_GRID,
    tol: o.headTol ?? DEFAULT_HEAD_TOL,
  });
  const valItems = valSet.rows.map((r) => feats.item[r]);
  const held = calibrateHeldOut(
    headLogits(sel.head, valSet.x, valSet.n),
    valItems,
    ds,
    o.reviewTargetAccuracy,
  );
  const { temperature, reviewThreshold, metrics: validation } = held;

  let testTimeAugmentation: TestTimeAugmentation | undefined;
  if (o.testTimeViews !== false) {
    stage('Calibrating the 8 test-time views (flips and turns) on validation');
    // With the head before any refit, so the validation images are still held out (as for `temperature`).
    const folded = foldStandardisation(sel.head);
    const probe = buildClassifierModel(
      readFileSync(extractor.path),
      { weight: folded.weight, bias: folded.bias, k, d: feats.d },
      { temperature, classes: ds.classes },
    );
    const cropOf = async (i: number) => {
      const prepared = await prepareImage(await readFile(ds.items[i].path), prep, { primaryOnly: true });
      return prepared.regions[0].pixels;
    };
    const views = await calibrateTestTimeViews(probe, valItems, cropOf, ds, {
      reviewTargetAccuracy: o.reviewTargetAccuracy,
      onProgress: o.onViews,
    });
    testTimeAugmentation = views.card;
  }

  let head = sel.head;
  let iterations = sel.table.find((t) => t.l2 === sel.l2)?.iterations ?? 0;
  if (o.refit) {
    stage('Refitting the head on training + validation images');
    const all = pick(() => true);
    const fit = fitSoftmaxHead(all.x, all.n, feats.d, all.y, k, {
      l2: sel.l2,
      sampleWeights: all.sampleWeights,
      init: { weight: sel.head.weight, bias: sel.head.bias },
      tol: o.headTol ?? DEFAULT_HEAD_TOL,
    });
    head = fit.head;
    iterations = fit.iterations;
  }
  const headSeconds = (performance.now() - th) / 1000;

  stage('Writing the model');
  const folded = foldStandardisation(head);
  const onnx = buildClassifierModel(
    readFileSync(extractor.path),
    { weight: folded.weight, bias: folded.bias, k, d: feats.d },
    { temperature, classes: ds.classes, metadata: { 'hematovision.name': o.name } },
  );
  const outDir = resolve(o.out);
  mkdirSync(outDir, { recursive: true });
  const modelPath = join(outDir, 'model.onnx');
  const cardPath = join(outDir, 'model.json');
  const card: ModelCard = {
    ...cardHeader(o.name, ds.classes, onnx),
    backbone: {
      name: 'MobileNetV2 1.0 224 (ImageNet), float32 from the uint8 TFLite model, BatchNorm folded',
      sha256: extractor.metadata['hematovision.backbone_sha256'],
      featureBlocks: extractor.metadata['hematovision.feature_blocks'].split(','),
      featureDim: feats.d,
      attribution: BACKBONE_ATTRIBUTION,
    },
    preprocessing: prep,
    temperature,
    reviewThreshold,
    head: {
      kind: 'softmax regression on standardised pooled features (folded into one Gemm)',
      l2: sel.l2,
      optimizer: o.refit
        ? 'L-BFGS, full batch; refit on training + validation rows with the l2 chosen on validation'
        : 'L-BFGS, full batch',
      iterations,
      l2Grid: o.l2Grid ?? DEFAULT_L2_GRID,
    },
    training: trainingRecord(ds, o, o.views),
    validation: held.record,
    ...(testTimeAugmentation ? { testTimeAugmentation } : {}),
    license: MODEL_LICENSE,
    intendedUse: INTENDED_USE,
  };
  // Write the model first, then the card: a card never points at a half-written model.
  writeAtomic(modelPath, onnx);
  writeAtomic(cardPath, Buffer.from(JSON.stringify(card, null, 2) + '\n'));
  return {
    card,
    modelPath,
    cardPath,
    validation,
    l2Table: sel.table,
    dataset: ds,
    failed: feats.failed,
    seconds: { features: featureSeconds, head: headSeconds, total: (performance.now() - t0) / 1000 },
  };
}
