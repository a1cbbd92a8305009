/**
 * Learning from reviewed cells by fine-tuning (chosen when there are many: training/reviewed-choice.ts): the
 * whole network trained from the active model (`train --from`'s machinery, training/finetune/) on the
 * training part of the reviewed cells, then scored beside the active model on the held-back cells: the same
 * grouped split (splitReviewed) and the same comparison (heldOutScore) as the frozen-head path.
 *
 * The reviewed cells go to fine-tuning as items held in memory (finetune/crops.ts MemoryCrops), not as a
 * temporary folder of images: each crop is the reviewed box cropped as serving crops it (the parent's
 * padding), not a cell located again in a re-saved file; the split is splitReviewed's rather than the
 * folder scan's; the card keeps the parent's preprocessing; and no patient image is copied to disk.
 *
 * A part of the training part's images (grouped, stratified) is set aside to calibrate the new network's
 * temperature and review threshold (its logits are no longer the parent's): the held-back cells take no part
 * in training, calibration or the choice of weights (the schedule runs to its end, `keep: 'last'`). The model
 * stored is the one scored: fine-tuning again on every cell would double the job's time.
 *
 * Familiarity: the parent's checks measure the parent's features and cannot be carried over; the candidate's
 * own are fitted on its training cells (reviewed-finetune-familiarity.ts), or, with fewer than 20 calibration
 * cells, it has none (it flags low confidence only) and its card says so. Its held-back review rate and silent
 * errors count whatever checks it has.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DatasetError } from '../errors.js';
import type { RgbImage } from '../imaging/types.js';
import { cardPathFor } from '../model/classifier.js';
import { FeatureExtractor } from '../model/feature-extractor.js';
import type { Preprocessing } from '../model/inputs.js';
import { readFloatInitializers } from '../model/onnx/graph-builder.js';
import { writeInput } from '../model/tensor.js';
import type { ModelCard } from '../model/types.js';
import { createCropStore, cropAt, type CropStore } from './batches.js';
import type { Dataset } from './dataset.js';
import { writeAtomic } from './files.js';
import { fineTuneModel, type FineTuneOptions } from './finetune/index.js';
import { appendFamiliarity } from '../model/familiarity-graph.js';
import type { AdaptationComparisonJson } from '../api/models.js';
import { cardHeader } from './model-card.js';
import { familiarityFlags, parentFamiliarity } from './reviewed-familiarity.js';
import {
  fitFineTunedFamiliarity,
  MIN_FAMILIARITY_CALIBRATION_CELLS,
} from './reviewed-finetune-familiarity.js';
import {
  heldBackValidation,
  heldOutScore,
  reviewedCrop,
  splitReviewed,
  type ReviewedOptions,
} from './reviewed.js';
import type { FAMILIARITY_DEFAULTS } from './familiarity.js';
import { groupedStratifiedSplit } from './split.js';

/**
 * The recipe for a few hundred cells a class, from the active model: the backbone and head learning rates of
 * the bundled model's card (models/README.md), a short schedule (3 epochs, half an epoch of warm-up: a few
 * hundred steps at most), `train`'s default augmentation (the cells are the lab's own, so the cross-lab
 * preset's stain and resolution changes are not needed), the last epoch kept.
 */
export const REVIEWED_FINE_TUNE = {
  epochs: 3,
  lr: 3e-5,
  headLr: 3e-4,
  warmupEpochs: 0.5,
  batchSize: 16,
  trainFromBlock: 0,
  augment: 'default' as const,
  /** Part of the training part's images set aside to calibrate temperature and review threshold. */
  calibrationFraction: 0.2,
  /** Accuracy wanted among results not flagged (`train --review-accuracy`'s default). */
  reviewTargetAccuracy: 0.95,
};

export interface ReviewedFineTuneOptions extends ReviewedOptions {
  /** The MobileNetV2 TFLite file the active model was built on. */
  tflite: string;
  /** Overrides of REVIEWED_FINE_TUNE (tests use a short run of the top blocks). */
  epochs?: number;
  lr?: number;
  headLr?: number;
  batchSize?: number;
  trainFromBlock?: number;
  workers?: 0 | 1;
  threads?: number;
  signal?: AbortSignal;
  /** Part of the training part's images that calibrates (default REVIEWED_FINE_TUNE.calibrationFraction). */
  calibrationFraction?: number;
  /** Changes to the familiarity checks' fit (FAMILIARITY_DEFAULTS; tests fit lower ranks, to be quick). */
  familiarity?: Partial<typeof FAMILIARITY_DEFAULTS>;
}

/** What the fine-tune path returns: the frozen path's shape, with its own recipe. */
export interface ReviewedFineTuneResult {
  modelPath: string;
  card: ModelCard;
  counts: {
    /** Cells the candidate was trained on (the training part less the calibration images). */
    trained: Record<string, number>;
    /** Cells of the training part that calibrated its temperature and review threshold. */
    calibration: Record<string, number>;
    heldOut: Record<string, number>;
    /** The stored candidate is the scored one: trained on `trained` only. */
    final: Record<string, number>;
    ignored: Record<string, number>;
  };
  recipe: {
    kind: 'fine-tune';
    epochs: number;
    trainFromBlock: number;
    lr: number;
    headLr: number;
    batchSize: number;
    steps: number;
    /** The starting head's l2 (chosen on the calibration images). */
    l2: number;
  };
  comparison: AdaptationComparisonJson;
}

/** Features (view 0) of the given cells through a model's backbone, and its blocks' widths. */
async function featuresOf(modelPath: string, crops: RgbImage[], size: number) {
  const extractor = await FeatureExtractor.load(modelPath);
  try {
    const d = extractor.featureDim;
    const x = new Float32Array(crops.length * d);
    for (let start = 0; start < crops.length; start += 16) {
      const part = crops.slice(start, start + 16);
      const input = new Float32Array(part.length * 3 * size * size);
      part.forEach((im, j) => writeInput(im, input, j));
      x.set(await extractor.extract(input, part.length, size), start * d);
    }
    return { x, d, blockDims: extractor.blockDims };
  } finally {
    await extractor.close();
  }
}

/** A model's head as its file holds it (head/W, head/b on raw features). */
function headOf(bytes: Uint8Array, k: number, d: number) {
  const init = readFloatInitializers(bytes);
  const w = init.get('head/W');
  const b = init.get('head/b');
  if (!w || !b || w.length !== k * d)
    throw new DatasetError('The model has no head this version can read.', 'bad_model');
  return { w, b };
}

export async function fineTuneFromReviewed(o: ReviewedFineTuneOptions): Promise<ReviewedFineTuneResult> {
  const progress = o.onProgress ?? (() => {});
  const base = JSON.parse(readFileSync(cardPathFor(o.modelPath), 'utf8')) as ModelCard;
  const { classes } = base;
  const k = classes.length;
  const prep = base.preprocessing;
  const { usable, items, split, ignored } = splitReviewed(classes, o.cells, o);
  const trainPart = split.train;
  const calibrationFraction = o.calibrationFraction ?? REVIEWED_FINE_TUNE.calibrationFraction;
  // The calibration images: a grouped, stratified part of the training part (never the held-back cells).
  const cal = groupedStratifiedSplit(
    trainPart.map((i) => items[i]),
    { valFraction: calibrationFraction, seed: o.seed, order: 'hashed' },
  );
  const missing = classes.filter((_, c) => !cal.val.some((j) => items[trainPart[j]].labelIndex === c));
  if (missing.length > 0)
    throw new DatasetError(
      `No reviewed image of ${missing.join(', ')} left to calibrate the fine-tuned model: review cells of more images.`,
      'too_few_reviewed_cells',
    );

  // The fine-tuning dataset: the training part only, one source (the reviewed lab). Item j is
  // o.cells[usable[trainPart[j]]]; its "path" only names it (fingerprint, messages), nothing reads it.
  const cellOf = (j: number) => o.cells[usable[trainPart[j]]];
  const source = 'reviewed cells';
  const ds: Dataset = {
    classes,
    items: trainPart.map((i, j) => ({
      path: `reviewed/${items[i].group}/${j}`,
      label: classes[items[i].labelIndex],
      labelIndex: items[i].labelIndex,
      source: 0,
      sourceName: source,
      group: items[i].group,
    })),
    sources: [
      {
        name: source,
        path: 'reviewed cells in the case store',
        counts: Object.fromEntries(
          classes.map((c, ci) => [c, trainPart.filter((i) => items[i].labelIndex === ci).length]),
        ),
      },
    ],
    skipped: { nonImage: 0, unknownClass: {} },
  };
  const keys: string[] = [];
  let cropStore: CropStore | null = null;
  const memory = {
    key: (j: number) => keys[j],
    crops: async (p: Preprocessing) => {
      const store = createCropStore(ds.items.length, p.inputSize);
      const bytes = p.inputSize * p.inputSize * 3;
      for (let j = 0; j < ds.items.length; j++) {
        const im = await reviewedCrop(cellOf(j), p);
        store.data.set(im.data, j * bytes);
        keys[j] = createHash('sha256').update(im.data).digest('hex');
        progress((0.08 * (j + 1)) / ds.items.length, 'Cropping the reviewed cells');
      }
      cropStore = store;
      return { store, failed: [] };
    },
  };

  const s = REVIEWED_FINE_TUNE;
  const epochs = o.epochs ?? s.epochs;
  const work = join(o.outDir, 'fine-tune');
  mkdirSync(work, { recursive: true });
  const options: FineTuneOptions = {
    data: [],
    out: o.outDir,
    tflite: o.tflite,
    from: o.modelPath,
    classes,
    crop: prep.crop,
    cropPadding: prep.cropPadding,
    seed: o.seed,
    valFraction: calibrationFraction,
    reviewTargetAccuracy: s.reviewTargetAccuracy,
    cacheDir: join(work, 'features'),
    name: `${base.name}-reviewed`,
    trainFromBlock: o.trainFromBlock ?? s.trainFromBlock,
    epochs,
    batchSize: o.batchSize ?? s.batchSize,
    lr: o.lr ?? s.lr,
    headLr: o.headLr ?? s.headLr,
    warmupEpochs: s.warmupEpochs,
    augment: s.augment,
    keep: 'last',
    workers: o.workers,
    threads: o.threads,
    signal: o.signal,
    testTimeViews: false,
    onFeatures: (done, total) =>
      progress(0.08 + (0.07 * done) / total, "Starting head on the active model's features"),
    onStep: (p) =>
      progress(
        0.15 + (0.7 * (p.epoch - 1 + p.step / p.steps)) / p.epochs,
        `Fine-tuning: epoch ${p.epoch} of ${p.epochs}`,
      ),
    onStage: (stage) => {
      if (stage.startsWith('Calibrating')) progress(0.86, 'Calibrating the fine-tuned model');
    },
  };
  const tuned = await fineTuneModel(options, {
    ds,
    split: { train: cal.train, val: cal.val },
    memory,
    prep,
  });
  rmSync(join(o.outDir, 'checkpoint'), { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });

  progress(0.88, "Features of the reviewed cells through the candidate's backbone");
  const heldCells = split.val.map((i) => o.cells[usable[i]]);
  const heldCrops: RgbImage[] = [];
  for (const c of heldCells) heldCrops.push(await reviewedCrop(c, prep));
  const y = Int32Array.from(split.val, (i) => items[i].labelIndex);
  const nTrain = trainPart.length;
  const trainCrops = trainPart.map((_, j) => cropAt(cropStore!, j));
  const both = await featuresOf(tuned.modelPath, [...trainCrops, ...heldCrops], prep.inputSize);
  const cand = { x: both.x.subarray(nTrain * both.d), d: both.d };
  const candidateBytes = readFileSync(tuned.modelPath);
  const candidateHead = headOf(candidateBytes, k, cand.d);

  progress(0.9, "Fitting the candidate's familiarity checks on the reviewed lab");
  const isCalibration = new Uint8Array(nTrain);
  for (const j of cal.val) isCalibration[j] = 1;
  const familiarity = fitFineTunedFamiliarity(
    {
      x: both.x.subarray(0, nTrain * both.d),
      n: nTrain,
      d: both.d,
      label: Int32Array.from(trainPart, (i) => items[i].labelIndex),
      isVal: isCalibration,
    },
    classes,
    both.blockDims,
    { ...candidateHead, temperature: tuned.card.temperature, reviewThreshold: tuned.card.reviewThreshold },
    { ...o.familiarity, seed: o.seed },
  );
  const reviewThreshold = familiarity?.reviewThreshold ?? tuned.card.reviewThreshold;

  progress(0.94, 'Scoring the candidate beside the active model on the held-back cells');
  const activeBytes = readFileSync(o.modelPath);
  const act = await featuresOf(o.modelPath, heldCrops, prep.inputSize);
  const parentChecks = parentFamiliarity(activeBytes, base);
  const activeFlags =
    parentChecks && familiarityFlags(parentChecks.refs, parentChecks.fam, act.x, y.length, act.d);
  const activeHead = headOf(activeBytes, k, act.d);
  const comparison = {
    heldOut: y.length,
    active: heldOutScore(
      act.x,
      y,
      activeHead.w,
      activeHead.b,
      act.d,
      classes,
      base.temperature,
      base.reviewThreshold,
      activeFlags ?? undefined,
    ),
    candidate: heldOutScore(
      cand.x,
      y,
      candidateHead.w,
      candidateHead.b,
      cand.d,
      classes,
      tuned.card.temperature,
      reviewThreshold,
      familiarity?.flags(cand.x, y.length, cand.d),
    ),
  };

  progress(0.97, 'Writing the candidate model');
  const count = (idx: number[]) =>
    Object.fromEntries(classes.map((c, ci) => [c, idx.filter((i) => items[i].labelIndex === ci).length]));
  const trained = count(cal.train.map((j) => trainPart[j]));
  const counts = {
    trained,
    calibration: count(cal.val.map((j) => trainPart[j])),
    heldOut: count(split.val),
    final: trained,
    ignored,
  };
  const ft = tuned.card.head.fineTuning!;
  const l2 = tuned.card.head.l2;
  const onnx = familiarity ? appendFamiliarity(candidateBytes, familiarity.references) : candidateBytes;
  const card: ModelCard = {
    ...tuned.card,
    modelSha256: cardHeader(tuned.card.name, classes, onnx).modelSha256,
    reviewThreshold,
    ...(familiarity ? { familiarity: familiarity.record } : {}),
    validation: heldBackValidation(comparison),
    reviewedCells: {
      recipe: 'fine-tune',
      from: { name: base.name, version: base.version, modelSha256: base.modelSha256 },
      trained: counts.trained,
      heldOut: counts.heldOut,
      final: counts.final,
      calibrationCells: counts.calibration,
      l2,
      seed: o.seed,
      note:
        `Fine-tuned from ${base.name} ${base.version} (blocks ${ft.fromBlock}–17 and the head, ${ft.epochs} ` +
        `epochs, backbone lr ${ft.lr}) on ${cal.train.length} reviewed cells of ${Object.keys(counts.trained).length} ` +
        `classes from the reviewed lab (${Object.entries(counts.trained)
          .map(([c, n]) => `${c} ${n}`)
          .join(
            ', ',
          )}). Its temperature and review threshold were fitted on ${cal.val.length} other reviewed ` +
        `cells of the training part; the ${comparison.heldOut} held-back cells (validation) took no part in ` +
        'training or calibration, and this model is the one they scored. ' +
        "The base's familiarity checks measure the base's features, fitted on its training images, which the " +
        'fine-tuned backbone no longer computes and this server does not hold: ' +
        (familiarity
          ? `its own (unfamiliar_cell, unfamiliar_image) were fitted on its features of the ${cal.train.length} ` +
            `training cells (one lab, the reviewed lab), thresholds on the ${cal.val.length} calibration cells, ` +
            'so it flags what is unlike the reviewed lab, not unlike the base’s labs. '
          : `it has no familiarity checks (fitting them needs at least ${MIN_FAMILIARITY_CALIBRATION_CELLS} ` +
            `calibration cells, it had ${cal.val.length}), so it flags low confidence only. `) +
        'Test-time augmentation is not calibrated.',
    },
  };
  // The model first, then the card: a card never points at a half-written model.
  if (familiarity) writeAtomic(tuned.modelPath, onnx);
  writeAtomic(cardPathFor(tuned.modelPath), Buffer.from(JSON.stringify(card, null, 2) + '\n'));
  progress(1, 'Done');
  return {
    modelPath: tuned.modelPath,
    card,
    counts,
    comparison,
    recipe: {
      kind: 'fine-tune',
      epochs: ft.epochs,
      trainFromBlock: ft.fromBlock,
      lr: ft.lr,
      headLr: ft.headLr,
      batchSize: ft.batchSize,
      steps: ft.steps,
      l2,
    },
  };
}
