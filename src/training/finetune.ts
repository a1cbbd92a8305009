/**
 * Fine-tuning: the top blocks of MobileNetV2 and the linear head trained together on augmented cell crops.
 *
 * Same data handling as trainModel (scan, grouped split with the same seed, preprocessing), so validation
 * numbers compare. Each image is decoded, located and cropped once; every epoch augments the crops afresh
 * (in a helper thread, while ONNX Runtime computes). The head starts from the frozen-backbone head (L-BFGS on
 * the unaugmented features of the training split, l2 chosen on validation), so fine-tuning starts from a good
 * point. Every epoch ends with validation, early stopping on validation NLL and a checkpoint that --resume
 * continues from exactly: batch order and augmentation are functions of (seed, epoch), never of timing.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { DatasetError, HematoError, ModelError } from '../errors.js';
import { AUGMENT_PRESETS, describeAugment, type AugmentPreset } from '../imaging/augment.js';
import {
  BACKBONE_ATTRIBUTION,
  backboneMetadata,
  buildBackboneModel,
  IMPORTER_VERSION,
  loadTfliteBackbone,
  mobileNetV2Spec,
  withBackboneOf,
} from '../model/backbone.js';
import { buildClassifierModel } from '../model/classifier-graph.js';
import { FeatureExtractor } from '../model/feature-extractor.js';
import { prepareImage, type Preprocessing } from '../model/inputs.js';
import { readMetadata } from '../model/onnx/graph-builder.js';
import { OnnxSession } from '../model/onnx/runtime.js';
import { buildInferenceGraph } from '../model/net/forward.js';
import { HEAD_BLOCK, inferShapes, type NetSpec, type ParamInfo } from '../model/net/spec.js';
import type { TfliteGraph } from '../model/tflite/read.js';
import { TRAIN_IO } from '../model/training-graph/graphs.js';
import { TrainingSession } from '../model/training-graph/session.js';
import type { FineTuningRecord, ModelCard, TestTimeAugmentation } from '../model/types.js';
import {
  createBatchMaker,
  createCropStore,
  cropAt,
  epochOrder,
  augmentSeed,
  fillBatch,
  type CropStore,
} from './batches.js';
import { fitTemperature, softmax } from './calibration.js';
import {
  checkSameRun,
  loadInto,
  markFinished,
  optimizerState,
  readCheckpoint,
  writeCheckpoint,
  type Checkpoint,
  type CheckpointHeader,
  type LoopState,
  type RunConfig,
} from './checkpoint.js';
import { scanDatasets, type Dataset } from './dataset.js';
import { computeFeatures } from './feature-cache.js';
import { foldStandardisation, selectL2, type L2Score } from './head.js';
import type { Metrics } from './metrics.js';
import { AdamW, GradientAccumulator, parametersFrom, warmupCosine } from './optimizer.js';
import { groupedStratifiedSplit } from './split.js';
import { calibrateTestTimeViews } from './test-time.js';
import { writeAtomic } from './files.js';
import { cardHeader, INTENDED_USE, MODEL_LICENSE, preprocessingFor, trainingRecord } from './model-card.js';
import { DEFAULT_L2_GRID } from './train.js';
import { argmax, calibrateHeldOut, validationRecord } from './held-out.js';
import { balanceWeights } from './weights.js';

/** MobileNetV2's blocks are 0 (stem) … 17 (the last 1×1 conv). */
export const LAST_BLOCK = 17;

/**
 * The recipe of the bundled model (Kaggle TRAIN + PBC, ~9.4k training crops, ~590 steps an epoch: about
 * 5 minutes an epoch, 54 for the 10 on two quiet cores). The whole network trains: from block 13 alone it
 * moved less and carried less across labs (scripts/cross-lab.sh). The learning rates are low because the folded-BatchNorm weights are
 * small (median |w| ≈ 0.02 in block 13) and Adam moves every weight by up to lr per step. Validation NLL rises
 * while the rate peaks and falls below the frozen start as it decays, so the whole schedule runs and its end
 * is kept ('last'); 'best' with patience stopped such runs before the recovery.
 */
export const FINE_TUNE_DEFAULTS = {
  trainFromBlock: 0,
  epochs: 10,
  batchSize: 16,
  /** Batches whose gradients are added up before each update (1: every batch updates). */
  accumulate: 1,
  /** Peak learning rate of the backbone; the head gets headLr. */
  lr: 3e-5,
  headLr: 3e-4,
  weightDecay: 0.01,
  warmupEpochs: 1,
  labelSmoothing: 0,
  augment: 'cross-lab' as AugmentPreset,
  keep: 'last' as 'best' | 'last',
  patience: 4,
  workers: 1 as 0 | 1,
  threads: 2,
};

/** What the model card says of an augmentation preset. */
export const augmentationNote = (preset: AugmentPreset): string =>
  `augment() preset '${preset}' (${describeAugment(AUGMENT_PRESETS[preset])}), drawn afresh every epoch`;

export interface StepProgress {
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  /** Running means over the epoch so far (loss weighted as the objective; accuracy on augmented images). */
  loss: number;
  accuracy: number;
  lr: number;
  imagesPerSecond: number;
}

export interface ValidationScore {
  /**
   * What early stopping watches: the mean NLL after temperature scaling on these logits (fine-tuning makes a
   * network over-confident long before it ranks worse, and the exported model is calibrated anyway), weighted
   * by the source/class balancing weights as the frozen path's l2 choice is.
   */
  nll: number;
  /** The same NLL at temperature 1. */
  rawNll: number;
  temperature: number;
  accuracy: number;
  /** Accuracy weighted like `nll` (each source and class counts equally). */
  balancedAccuracy: number;
  perSource: Record<string, number>;
}

export interface EpochSummary {
  /** 0 is the starting point (frozen-backbone head), before any fine-tuning. */
  epoch: number;
  trainLoss: number | null;
  trainAccuracy: number | null;
  val: ValidationScore;
  /** Backbone learning rate at the end of the epoch. */
  lr: number | null;
  seconds: number;
  best: boolean;
}

export interface FineTuneOptions {
  data: string[];
  out: string;
  /** The MobileNetV2 TFLite file the backbone comes from (its sha256 is checked). */
  tflite: string;
  /**
   * A HematoVision model (.onnx) on that backbone whose weights the run starts from instead of ImageNet's, e.g.
   * the bundled model adapted to a lab's own images. Its head is refitted on this data, so classes may differ.
   */
  from?: string;
  classes?: string[];
  crop: 'whole' | 'cell';
  cropPadding: number;
  seed: number;
  valFraction: number;
  sourceWeights?: Record<string, number>;
  reviewTargetAccuracy: number;
  /** Feature cache for the starting head (shared with `train`). */
  cacheDir: string;
  name: string;
  l2Grid?: number[];
  /** First trained block (0 or 'all' trains everything); default 0. */
  trainFromBlock?: number | 'all';
  epochs?: number;
  batchSize?: number;
  /**
   * Add up the gradients of this many batches before each update: an update of accumulate × batchSize
   * images with the memory of one batch (the schedule counts updates).
   */
  accumulate?: number;
  lr?: number;
  headLr?: number;
  weightDecay?: number;
  warmupEpochs?: number;
  labelSmoothing?: number;
  /** Augmentation preset (see AUGMENT_PRESETS). */
  augment?: AugmentPreset;
  /**
   * 'best' keeps the epoch with the lowest validation NLL (early stopping with `patience`); 'last' runs the
   * whole schedule and keeps its end, for when validation cannot speak for the images the model will meet
   * (other labs) or is too small to rank epochs.
   */
  keep?: 'best' | 'last';
  /** Stop after this many epochs without a lower validation NLL. */
  patience?: number;
  /** Continue from `<out>/checkpoint/`. */
  resume?: boolean;
  /** 1: augment in a helper thread while ONNX Runtime computes; 0: inline. */
  workers?: 0 | 1;
  /** ONNX Runtime intra-op threads. */
  threads?: number;
  /** Aborting stops at the next step; the last epoch's checkpoint stays for --resume. */
  signal?: AbortSignal;
  /** Calibrate the written model for its 8 test-time views (the card's testTimeAugmentation); default true. */
  testTimeViews?: boolean;
  onStage?: (stage: string) => void;
  onPrepare?: (done: number, total: number) => void;
  onViews?: (done: number, total: number) => void;
  onFeatures?: (done: number, total: number, cached: number) => void;
  onStep?: (p: StepProgress) => void;
  onEpoch?: (e: EpochSummary) => void;
}

export interface FineTuneResult {
  card: ModelCard;
  modelPath: string;
  cardPath: string;
  /** Of the kept weights, after temperature scaling. */
  validation: Metrics;
  history: EpochSummary[];
  bestEpoch: number;
  /** Whose weights were shipped: bestEpoch, or the last epoch with keep 'last'. */
  keptEpoch: number;
  /** The starting head's l2 table (empty when resumed from a checkpoint written before it was kept). */
  l2Table: L2Score[];
  dataset: Dataset;
  failed: { index: number; path: string; reason: string }[];
  /** The network with the kept weights (head on raw features), as exported. */
  spec: NetSpec;
  resumed: boolean;
  seconds: { prepare: number; init: number; train: number; total: number };
}

type Settings = Required<
  Pick<
    FineTuneOptions,
    | 'epochs'
    | 'batchSize'
    | 'accumulate'
    | 'lr'
    | 'headLr'
    | 'weightDecay'
    | 'warmupEpochs'
    | 'labelSmoothing'
    | 'augment'
    | 'keep'
    | 'patience'
    | 'workers'
    | 'threads'
  >
> & { trainFromBlock: number };

function settingsOf(o: FineTuneOptions): Settings {
  const d = FINE_TUNE_DEFAULTS;
  const from = o.trainFromBlock === 'all' ? 0 : (o.trainFromBlock ?? d.trainFromBlock);
  const s: Settings = {
    trainFromBlock: from,
    epochs: o.epochs ?? d.epochs,
    batchSize: o.batchSize ?? d.batchSize,
    accumulate: o.accumulate ?? d.accumulate,
    lr: o.lr ?? d.lr,
    headLr: o.headLr ?? d.headLr,
    weightDecay: o.weightDecay ?? d.weightDecay,
    warmupEpochs: o.warmupEpochs ?? d.warmupEpochs,
    labelSmoothing: o.labelSmoothing ?? d.labelSmoothing,
    augment: o.augment ?? d.augment,
    keep: o.keep ?? d.keep,
    patience: o.patience ?? d.patience,
    workers: o.workers ?? d.workers,
    threads: o.threads ?? d.threads,
  };
  const bad = (what: string) => {
    throw new DatasetError(what);
  };
  if (!Number.isInteger(from) || from < 0 || from > LAST_BLOCK)
    bad(`The first trained block must be 0–${LAST_BLOCK} (or 'all'), got ${o.trainFromBlock}.`);
  if (!Number.isInteger(s.epochs) || s.epochs < 1) bad('Epochs must be a whole number ≥ 1.');
  if (!Number.isInteger(s.batchSize) || s.batchSize < 1 || s.batchSize > 256)
    bad('The batch size must be a whole number in [1, 256].');
  if (!Number.isInteger(s.accumulate) || s.accumulate < 1 || s.accumulate > 64)
    bad('Accumulate must be a whole number of batches in [1, 64].');
  for (const [k, v] of [
    ['lr', s.lr],
    ['head lr', s.headLr],
  ] as const)
    if (!(v > 0 && v < 1)) bad(`The ${k} must be in (0, 1), got ${v}.`);
  if (!(s.weightDecay >= 0 && s.weightDecay < 1)) bad('Weight decay must be in [0, 1).');
  if (!(s.warmupEpochs >= 0)) bad('Warm-up epochs must be ≥ 0.');
  if (!(s.labelSmoothing >= 0 && s.labelSmoothing < 1)) bad('Label smoothing must be in [0, 1).');
  if (!Object.hasOwn(AUGMENT_PRESETS, s.augment))
    bad(`Unknown augmentation '${s.augment}': use ${Object.keys(AUGMENT_PRESETS).join(' or ')}.`);
  if (s.keep !== 'best' && s.keep !== 'last') bad(`Keep 'best' or 'last', got '${s.keep}'.`);
  if (!Number.isInteger(s.patience) || s.patience < 1) bad('Patience must be a whole number ≥ 1.');
  return s;
}

/** Fine-tunes blocks ≥ trainFromBlock and the head, then calibrates and writes model.onnx + model.json. */
export async function fineTuneModel(o: FineTuneOptions): Promise<FineTuneResult> {
  const t0 = performance.now();
  const stage = o.onStage ?? (() => {});
  const s = settingsOf(o);
  const tflitePath = resolve(o.tflite);
  if (!existsSync(tflitePath)) {
    throw new ModelError(
      `Fine-tuning needs the MobileNetV2 TFLite weights, not found at ${tflitePath}. Pass --tflite with ` +
        'mobilenet_v2_1.0_224_quant.tflite (the file the backbone was imported from).',
      'model_not_found',
    );
  }
  const tfliteBytes = readFileSync(tflitePath);
  const tfl = loadTfliteBackbone(tfliteBytes);
  const start = o.from ? startingModel(o.from, tfl) : null;

  stage('Scanning data');
  const ds = await scanDatasets(o.data, { classes: o.classes });
  const k = ds.classes.length;
  if (k < 2) throw new DatasetError('Training needs at least two classes.');
  const split = groupedStratifiedSplit(ds.items, { valFraction: o.valFraction, seed: o.seed });
  if (split.train.length === 0 || split.val.length === 0)
    throw new DatasetError('One side of the split is empty: add images (or groups) per class.');
  const prep = preprocessingFor(o.crop, o.cropPadding);

  const outDir = resolve(o.out);
  const ckptDir = join(outDir, 'checkpoint');
  const ckptFile = join(ckptDir, 'checkpoint.bin');
  const config = fingerprint(o, s, ds, split.val, tfl.sha256, start?.sha256);
  let ckpt: Checkpoint | null = null;
  if (existsSync(ckptFile)) {
    const found = readCheckpoint(ckptFile);
    if (o.resume) {
      checkSameRun(found.header.config, config, ckptDir);
      ckpt = found;
    } else if (!found.header.finished) {
      throw new HematoError(
        `${ckptDir} holds an unfinished fine-tuning run (epoch ${found.header.epoch} of ${found.header.config.epochs}). ` +
          'Pass --resume to continue it, or delete that folder (or choose another --out) to start over.',
        'checkpoint_exists',
      );
    }
  } else if (o.resume) {
    throw new HematoError(`Nothing to resume: no checkpoint in ${ckptDir}.`, 'no_checkpoint');
  }

  stage('Cropping every image once');
  const tp = performance.now();
  const { store, failed } = await prepareCrops(ds.items, prep, o.onPrepare);
  const ok = new Uint8Array(ds.items.length).fill(1);
  for (const f of failed) ok[f.index] = 0;
  const trainItems = split.train.filter((i) => ok[i]);
  const valItems = split.val.filter((i) => ok[i]);
  if (trainItems.length === 0 || valItems.length === 0)
    throw new DatasetError('No usable images on one side of the split.');
  const prepareSeconds = (performance.now() - tp) / 1000;
  const itemWeights = balanceWeights(ds.items, { sourceWeights: o.sourceWeights });

  const ti = performance.now();
  let spec: NetSpec;
  let initial: CheckpointHeader['initial'];
  if (ckpt) {
    stage(`Resuming after epoch ${ckpt.header.epoch} from ${ckptDir}`);
    const pretrained = mobileNetV2Spec(tfl, { classes: k });
    spec = start ? { ...pretrained, layers: start.layers } : pretrained;
    initial = ckpt.header.initial;
  } else {
    stage(
      `Starting head: ${start ? `${start.name}'s` : 'frozen-backbone'} features of the unaugmented crops, l2 chosen on validation`,
    );
    const init = await startingHead(o, ds, tfliteBytes, prep, trainItems, valItems, itemWeights);
    const head = mobileNetV2Spec(tfl, { head: { ...foldStandardisation(init.head), classes: k } });
    spec = start ? { ...head, layers: start.layers } : head;
    initial = { l2: init.l2, l2Table: init.table };
  }
  const initSeconds = (performance.now() - ti) / 1000;

  stage(`Building the training graph (blocks ≥ ${s.trainFromBlock} and the head)`);
  const session = await TrainingSession.create(spec, {
    trainFromBlock: s.trainFromBlock,
    frozenPrefix: 'separate',
    batchSize: s.batchSize,
    labelSmoothing: s.labelSmoothing,
    threads: s.threads,
  });
  const trainable = session.trainable;
  const headParams = trainable.filter((p) => p.block === HEAD_BLOCK);
  const bodyParams = trainable.filter((p) => p.block !== HEAD_BLOCK);
  const optHead = new AdamW(parametersFrom(headParams), { weightDecay: s.weightDecay });
  const optBody = new AdamW(parametersFrom(bodyParams), { weightDecay: s.weightDecay });
  let validator: Validator | null = null;
  const maker = createBatchMaker(store, { workers: s.workers, augment: AUGMENT_PRESETS[s.augment] });

  // A step is one update: `accumulate` batches (the last of an epoch may have fewer).
  const batchesPerEpoch = Math.ceil(trainItems.length / s.batchSize);
  const stepsPerEpoch = Math.ceil(batchesPerEpoch / s.accumulate);
  const totalSteps = s.epochs * stepsPerEpoch;
  const accumulator = s.accumulate > 1 ? new GradientAccumulator() : null;
  const warmupSteps = Math.min(Math.round(s.warmupEpochs * stepsPerEpoch), Math.floor(totalSteps / 2));
  const schedule = (step: number) => warmupCosine(step, { peak: s.lr, warmupSteps, totalSteps });
  const scoreOf = (logits: Float32Array) => scoreValidation(logits, valItems, ds, itemWeights, k);

  let state: LoopState;
  let best: Map<string, Float32Array>;
  const tt = performance.now();
  let trained = false;
  try {
    validator = await Validator.create(spec, trainable, store, valItems, s.threads);
    if (ckpt) {
      loadInto(trainable, ckpt, 'w');
      optHead.loadState(optimizerState(ckpt, 'head', headParams));
      optBody.loadState(optimizerState(ckpt, 'body', bodyParams));
      best = new Map(trainable.map((p) => [p.name, ckpt!.tensors.get(`best/${p.name}`)!.slice()]));
      const h = ckpt.header;
      state = {
        epoch: h.epoch,
        step: h.step,
        bestEpoch: h.bestEpoch,
        bestNll: h.bestNll,
        bad: h.bad,
        history: h.history,
        stoppedEarly: h.stoppedEarly,
      };
    } else {
      stage('Validating the starting point');
      const t = performance.now();
      const val = scoreOf(await validator.logits());
      const e0: EpochSummary = {
        epoch: 0,
        trainLoss: null,
        trainAccuracy: null,
        val,
        lr: null,
        seconds: (performance.now() - t) / 1000,
        best: true,
      };
      best = snapshot(trainable);
      state = {
        epoch: 0,
        step: 0,
        bestEpoch: 0,
        bestNll: val.nll,
        bad: 0,
        history: [e0],
        stoppedEarly: false,
      };
      o.onEpoch?.(e0);
    }

    const labels = Int32Array.from(ds.items, (it) => it.labelIndex);
    while (state.epoch < s.epochs && !state.stoppedEarly) {
      const epoch = state.epoch + 1;
      const te = performance.now();
      stage(`Epoch ${epoch} of ${s.epochs}`);
      const order = epochOrder(trainItems, o.seed, epoch);
      const batches = Array.from({ length: batchesPerEpoch }, (_, b) =>
        order.slice(b * s.batchSize, (b + 1) * s.batchSize),
      );
      const request = (b: number) =>
        maker.make(
          batches[b],
          batches[b].map((i) => augmentSeed(o.seed, epoch, i)),
        );
      let lossSum = 0;
      let weightSum = 0;
      let correct = 0;
      let seen = 0;
      let lr = schedule(state.step);
      let pending = request(0);
      for (let b = 0; b < batches.length; b++) {
        const images = await pending;
        // The next batch is augmented while this one trains.
        if (b + 1 < batches.length) pending = request(b + 1);
        if (o.signal?.aborted) {
          await pending.catch(() => {});
          throw interrupted(state.epoch, s.epochs, ckptDir);
        }
        const items = batches[b];
        const n = items.length;
        const targets = new Float32Array(n * k);
        const sampleWeights = new Float32Array(n);
        items.forEach((i, j) => {
          targets[j * k + labels[i]] = 1;
          sampleWeights[j] = itemWeights[i];
        });
        const r = await session.step({ images, n, targets, sampleWeights });
        if (!Number.isFinite(r.loss)) {
          throw new HematoError(
            `The training loss became ${r.loss} at epoch ${epoch}, step ${b + 1}: lower --lr.`,
            'diverged',
            500,
          );
        }
        accumulator?.add(r.grads, r.weightSum);
        // Each epoch ends on an update, so a checkpoint never holds half-added gradients.
        if (!accumulator || accumulator.count === s.accumulate || b + 1 === batches.length) {
          const grads = accumulator ? accumulator.mean() : r.grads;
          accumulator?.reset();
          lr = schedule(state.step);
          optBody.step(grads, lr);
          optHead.step(grads, (lr * s.headLr) / s.lr);
          state.step++;
        }
        lossSum += r.loss * r.weightSum;
        weightSum += r.weightSum;
        for (let j = 0; j < n; j++) if (argmax(r.logits, j, k) === labels[items[j]]) correct++;
        seen += n;
        o.onStep?.({
          epoch,
          epochs: s.epochs,
          step: b + 1,
          steps: batches.length,
          loss: lossSum / weightSum,
          accuracy: correct / seen,
          lr,
          imagesPerSecond: seen / ((performance.now() - te) / 1000),
        });
      }

      const val = scoreOf(await validator.logits());
      const improved = val.nll < state.bestNll;
      if (improved) {
        state.bestNll = val.nll;
        state.bestEpoch = epoch;
        state.bad = 0;
        best = snapshot(trainable);
      } else {
        state.bad++;
      }
      state.epoch = epoch;
      state.stoppedEarly = s.keep === 'best' && state.bad >= s.patience && epoch < s.epochs;
      const summary: EpochSummary = {
        epoch,
        trainLoss: lossSum / weightSum,
        trainAccuracy: correct / seen,
        val,
        lr,
        seconds: (performance.now() - te) / 1000,
        best: improved,
      };
      state.history.push(summary);
      writeCheckpoint(ckptFile, {
        config,
        initial,
        ...state,
        finished: false,
        optimizer: { head: optHead.saveState(), body: optBody.saveState() },
        weights: trainable,
        best,
      });
      o.onEpoch?.(summary);
      if (o.signal?.aborted && state.epoch < s.epochs && !state.stoppedEarly)
        throw interrupted(state.epoch, s.epochs, ckptDir);
    }
    trained = true;
  } finally {
    await maker.close();
    await session.close();
    if (!trained) await validator?.close();
  }
  const trainSeconds = (performance.now() - tt) / 1000;

  const keptEpoch = s.keep === 'last' ? state.epoch : state.bestEpoch;
  stage(`Calibrating the weights of epoch ${keptEpoch} on validation`);
  if (s.keep === 'best') for (const p of trainable) p.data.set(best.get(p.name)!);
  const valLogits = await validator!.logits();
  await validator!.close();
  const held = calibrateHeldOut(valLogits, valItems, ds, o.reviewTargetAccuracy);
  const { temperature, reviewThreshold, metrics: validation } = held;

  const testTime =
    o.testTimeViews === false
      ? undefined
      : async (onnx: Uint8Array) => {
          stage('Calibrating the 8 test-time views (flips and turns) on validation');
          const views = await calibrateTestTimeViews(onnx, valItems, (i) => cropAt(store, i), ds, {
            reviewTargetAccuracy: o.reviewTargetAccuracy,
            threads: s.threads,
            onProgress: o.onViews,
          });
          return views.card;
        };
  const { card, modelPath, cardPath } = await writeFineTuned({
    o,
    s,
    spec,
    tfliteSha256: tfl.sha256,
    startedFrom: start ? { name: start.name, sha256: start.sha256 } : undefined,
    ds,
    prep,
    state,
    keptEpoch,
    initial,
    temperature,
    reviewThreshold,
    validation,
    perSource: held.record.perSource,
    outDir,
    testTime,
    onWrite: () => stage('Writing the model'),
  });
  markFinished(ckptFile);

  return {
    card,
    modelPath,
    cardPath,
    validation,
    history: state.history,
    bestEpoch: state.bestEpoch,
    keptEpoch,
    l2Table: initial.l2Table,
    dataset: ds,
    failed,
    spec,
    resumed: ckpt !== null,
    seconds: {
      prepare: prepareSeconds,
      init: initSeconds,
      train: trainSeconds,
      total: (performance.now() - t0) / 1000,
    },
  };
}

interface ExportInputs {
  o: FineTuneOptions;
  s: Settings;
  spec: NetSpec;
  tfliteSha256: string;
  startedFrom?: { name: string; sha256: string };
  ds: Dataset;
  prep: Preprocessing;
  state: LoopState;
  keptEpoch: number;
  initial: CheckpointHeader['initial'];
  temperature: number;
  reviewThreshold: number;
  validation: Metrics;
  perSource: Record<string, { n: number; accuracy: number }>;
  outDir: string;
  /** Calibrates the exported network for test-time views (none: one view only). */
  testTime?: (onnx: Uint8Array) => Promise<TestTimeAugmentation>;
  onWrite: () => void;
}

/** The one-file classifier (fine-tuned backbone + head + calibration) and its card. */
async function writeFineTuned(
  x: ExportInputs,
): Promise<{ card: ModelCard; modelPath: string; cardPath: string }> {
  const { o, s, spec, ds, prep, state, initial, tfliteSha256, outDir } = x;
  const { temperature, reviewThreshold, validation, perSource } = x;
  const k = ds.classes.length;
  const shapes = inferShapes(spec);
  const dims = spec.features.map((f) => shapes.get(f)![0]);
  const d = dims.reduce((a, b) => a + b, 0);
  const weightsSha256 = backboneWeightsSha256(spec);
  // Epoch 0 kept means the starting weights: from ImageNet, their features are the pretrained backbone's.
  const changed = x.keptEpoch > 0 || x.startedFrom !== undefined;
  const pretrained = backboneMetadata(tfliteSha256, spec.features, dims);
  const backboneId = changed
    ? `${tfliteSha256.slice(0, 16)}-v${IMPORTER_VERSION}-ft${weightsSha256.slice(0, 16)}-${spec.features.join('+')}`
    : pretrained['hematovision.backbone_id'];
  const backbone = buildInferenceGraph(spec, {
    head: false,
    doc: changed
      ? `${BACKBONE_ATTRIBUTION} Blocks ≥ ${s.trainFromBlock} fine-tuned by HematoVision.`
      : BACKBONE_ATTRIBUTION,
    metadata: changed
      ? {
          ...pretrained,
          // A new id: feature caches keyed on it never mix features of different weights.
          'hematovision.backbone_id': backboneId,
          'hematovision.finetuned_from_block': String(s.trainFromBlock),
          'hematovision.finetuned_weights_sha256': weightsSha256,
        }
      : pretrained,
  });
  const onnx = buildClassifierModel(
    backbone,
    { weight: spec.head.weight, bias: spec.head.bias, k, d },
    { temperature, classes: ds.classes, metadata: { 'hematovision.name': o.name } },
  );
  const testTimeAugmentation = await x.testTime?.(onnx);
  x.onWrite();
  mkdirSync(outDir, { recursive: true });
  const modelPath = join(outDir, 'model.onnx');
  const cardPath = join(outDir, 'model.json');
  const epochsRun = state.epoch;
  const record: FineTuningRecord = {
    fromBlock: s.trainFromBlock,
    epochs: epochsRun,
    maxEpochs: s.epochs,
    bestEpoch: state.bestEpoch,
    keep: s.keep,
    keptEpoch: x.keptEpoch,
    steps: state.step,
    batchSize: s.batchSize,
    ...(s.accumulate > 1 ? { accumulate: s.accumulate } : {}),
    lr: s.lr,
    headLr: s.headLr,
    warmupEpochs: s.warmupEpochs,
    weightDecay: s.weightDecay,
    labelSmoothing: s.labelSmoothing,
    patience: s.keep === 'best' ? s.patience : null,
    augmentation: augmentationNote(s.augment),
    initialHead: `softmax regression (L-BFGS) on frozen features of the unaugmented training crops, l2 ${initial.l2} chosen on validation`,
    ...(x.startedFrom ? { startedFrom: x.startedFrom } : {}),
  };
  const card: ModelCard = {
    ...cardHeader(o.name, ds.classes, onnx),
    backbone: {
      name:
        'MobileNetV2 1.0 224 (ImageNet), float32 from the uint8 TFLite model, BatchNorm folded; ' +
        (x.startedFrom ? `started from ${x.startedFrom.name}'s weights; ` : '') +
        (x.keptEpoch > 0
          ? `blocks ${s.trainFromBlock}–${LAST_BLOCK} fine-tuned on the training data`
          : `fine-tuning blocks ${s.trainFromBlock}–${LAST_BLOCK} did not beat the ${x.startedFrom ? 'starting' : 'pretrained'} weights on validation, which are kept`),
      sha256: tfliteSha256,
      featureBlocks: spec.features,
      featureDim: d,
      attribution: BACKBONE_ATTRIBUTION,
      ...(changed ? { fineTuned: { fromBlock: s.trainFromBlock, weightsSha256, backboneId } } : {}),
    },
    preprocessing: prep,
    temperature,
    reviewThreshold,
    head: {
      kind: `linear head on pooled multi-block features, fine-tuned with blocks ${s.trainFromBlock}–${LAST_BLOCK}`,
      l2: initial.l2,
      optimizer:
        `AdamW (backbone lr ${s.lr}, head lr ${s.headLr}, weight decay ${s.weightDecay}, none on biases), ` +
        `${s.warmupEpochs} warm-up epoch(s) then cosine, batch ${s.batchSize}` +
        (s.accumulate > 1 ? ` × ${s.accumulate} accumulated; ` : '; ') +
        (s.keep === 'best'
          ? `best of ${epochsRun} epochs by validation NLL (epoch ${state.bestEpoch})`
          : `the last of ${epochsRun} epochs`),
      iterations: state.step,
      l2Grid: o.l2Grid ?? DEFAULT_L2_GRID,
      fineTuning: record,
    },
    // Every epoch draws a new augmented view of each training image.
    training: trainingRecord(ds, o, epochsRun),
    validation: validationRecord(validation, perSource),
    ...(testTimeAugmentation ? { testTimeAugmentation } : {}),
    license: MODEL_LICENSE,
    intendedUse: INTENDED_USE,
  };
  writeAtomic(modelPath, onnx);
  writeAtomic(cardPath, Buffer.from(JSON.stringify(card, null, 2) + '\n'));
  return { card, modelPath, cardPath };
}

function interrupted(epoch: number, epochs: number, ckptDir: string): HematoError {
  return new HematoError(
    `Fine-tuning stopped after epoch ${epoch} of ${epochs}. Run the same command with --resume to continue ` +
      `from the checkpoint in ${ckptDir}.`,
    'interrupted',
    500,
  );
}

/** Decodes, locates and crops every image once (the serving path, primary cell only); slot i holds items[i]. */
export async function prepareCrops(
  items: Dataset['items'],
  prep: Preprocessing,
  onProgress?: (done: number, total: number) => void,
): Promise<{ store: CropStore; failed: FineTuneResult['failed'] }> {
  const size = prep.inputSize;
  // Slot i holds item i: a failed item leaves its slot unused, which costs less than an index map.
  const store = createCropStore(items.length, size);
  const failed: FineTuneResult['failed'] = [];
  const bytes = size * size * 3;
  const chunk = 8; // sharp decodes in its own threads; a few in flight keep it busy
  for (let start = 0; start < items.length; start += chunk) {
    const end = Math.min(items.length, start + chunk);
    await Promise.all(
      Array.from({ length: end - start }, async (_, j) => {
        const i = start + j;
        try {
          const prepared = await prepareImage(await readFile(items[i].path), prep, { primaryOnly: true });
          if (prepared.regions.length === 0) {
            failed.push({ index: i, path: items[i].path, reason: 'no white cell found' });
            return;
          }
          store.data.set(prepared.regions[0].pixels.data, i * bytes);
        } catch (e) {
          failed.push({
            index: i,
            path: items[i].path,
            reason: e instanceof HematoError ? e.message : String(e),
          });
        }
      }),
    );
    onProgress?.(end, items.length);
  }
  failed.sort((a, b) => a.index - b.index);
  return { store, failed };
}

/**
 * The backbone layers of the model `train --from` names, read once and checked against this TFLite file
 * before any data is read (a wrong file or another backbone fails fast).
 */
function startingModel(path: string, tfl: TfliteGraph) {
  const file = resolve(path);
  if (!existsSync(file))
    throw new ModelError(`The model to start from was not found at ${file}.`, 'model_not_found');
  const bytes = readFileSync(file);
  let layers: NetSpec['layers'];
  try {
    layers = withBackboneOf(mobileNetV2Spec(tfl, { classes: 0 }), bytes, tfl.sha256).layers;
  } catch (e) {
    if (e instanceof ModelError) throw new ModelError(`--from ${file}: ${e.message}`, e.code);
    throw e;
  }
  const name = readMetadata(bytes)['hematovision.name'] ?? basename(file);
  return { layers, name, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/**
 * The starting head: fitted on view-0 features of the training split from the starting backbone (ImageNet's
 * or `from`'s; shared feature cache), l2 by validation.
 */
async function startingHead(
  o: FineTuneOptions,
  ds: Dataset,
  tflite: Uint8Array,
  prep: Preprocessing,
  trainItems: number[],
  valItems: number[],
  itemWeights: Float32Array,
) {
  // The starting backbone as a file, so computeFeatures and its cache (keyed on the backbone id) serve.
  const dir = mkdtempSync(join(tmpdir(), 'hematovision-backbone-'));
  let feats: Awaited<ReturnType<typeof computeFeatures>>;
  try {
    const path = o.from ? resolve(o.from) : join(dir, 'backbone.onnx');
    if (!o.from) writeFileSync(path, buildBackboneModel(tflite));
    const extractor = await FeatureExtractor.load(path);
    try {
      feats = await computeFeatures(ds.items, extractor, prep, {
        views: 1,
        seed: o.seed,
        cacheDir: o.cacheDir,
        onProgress: o.onFeatures,
      });
    } finally {
      await extractor.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const rowOf = new Int32Array(ds.items.length).fill(-1);
  for (let r = 0; r < feats.n; r++) rowOf[feats.item[r]] = r;
  const pick = (items: number[]) => {
    const rows = items.filter((i) => rowOf[i] >= 0);
    const x = new Float32Array(rows.length * feats.d);
    rows.forEach((i, j) =>
      x.set(feats.x.subarray(rowOf[i] * feats.d, (rowOf[i] + 1) * feats.d), j * feats.d),
    );
    return {
      x,
      n: rows.length,
      y: Int32Array.from(rows, (i) => ds.items[i].labelIndex),
      sampleWeights: Float32Array.from(rows, (i) => itemWeights[i]),
    };
  };
  return selectL2(pick(trainItems), pick(valItems), feats.d, ds.classes.length, {
    grid: o.l2Grid ?? DEFAULT_L2_GRID,
  });
}

/** Logits of the validation crops under the current weights; one session, the trainable weights fed in. */
class Validator {
  private constructor(
    private readonly session: OnnxSession,
    private readonly params: ParamInfo[],
    private readonly store: CropStore,
    private readonly items: number[],
    private readonly k: number,
  ) {}

  static async create(
    spec: NetSpec,
    params: ParamInfo[],
    store: CropStore,
    items: number[],
    threads: number,
  ) {
    const model = buildInferenceGraph(spec, { paramInputs: params.map((p) => p.name) });
    const session = await OnnxSession.create(model, threads, { spin: false });
    return new Validator(session, params, store, items, spec.head.classes);
  }

  async logits(): Promise<Float32Array> {
    const batch = 32;
    const s = this.store.size;
    const out = new Float32Array(this.items.length * this.k);
    const feeds: Record<string, { data: Float32Array; dims: number[] }> = {};
    for (const p of this.params) feeds[p.name] = { data: p.data, dims: p.dims };
    for (let start = 0; start < this.items.length; start += batch) {
      const items = this.items.slice(start, start + batch);
      const input = new Float32Array(items.length * 3 * s * s);
      fillBatch(this.store, items, null, input);
      feeds[TRAIN_IO.input] = { data: input, dims: [items.length, 3, s, s] };
      const r = await this.session.run(feeds, [TRAIN_IO.logits]);
      out.set(r[TRAIN_IO.logits].data, start * this.k);
    }
    return out;
  }

  close(): Promise<void> {
    return this.session.close();
  }
}

function scoreValidation(
  logits: Float32Array,
  items: number[],
  ds: Dataset,
  weights: Float32Array,
  k: number,
): ValidationScore {
  const y = Int32Array.from(items, (i) => ds.items[i].labelIndex);
  const temperature = fitTemperature(logits, y, k);
  const nllAt = (p: Float32Array) => {
    let sum = 0;
    let wsum = 0;
    items.forEach((i, j) => {
      sum -= weights[i] * Math.log(Math.max(p[j * k + y[j]], 1e-30));
      wsum += weights[i];
    });
    return sum / wsum;
  };
  const p = softmax(logits, k);
  let hit = 0;
  let whit = 0;
  let wsum = 0;
  const bySource = ds.sources.map(() => ({ n: 0, hit: 0 }));
  items.forEach((i, j) => {
    const ok = argmax(p, j, k) === y[j] ? 1 : 0;
    hit += ok;
    whit += ok * weights[i];
    wsum += weights[i];
    const src = bySource[ds.items[i].source];
    src.n++;
    src.hit += ok;
  });
  const perSource: Record<string, number> = {};
  ds.sources.forEach((src, si) => {
    if (bySource[si].n > 0) perSource[src.name] = bySource[si].hit / bySource[si].n;
  });
  return {
    nll: nllAt(softmax(logits, k, temperature)),
    rawNll: nllAt(p),
    temperature,
    accuracy: hit / items.length,
    balancedAccuracy: whit / wsum,
    perSource,
  };
}

function snapshot(params: ParamInfo[]): Map<string, Float32Array> {
  return new Map(params.map((p) => [p.name, p.data.slice()]));
}

/** sha256 of every backbone weight (not the head): the identity of the features the model computes. */
export function backboneWeightsSha256(spec: NetSpec): string {
  const h = createHash('sha256');
  for (const l of spec.layers) {
    if (l.kind !== 'conv') continue;
    h.update(new Uint8Array(l.weight.buffer, l.weight.byteOffset, l.weight.byteLength));
    h.update(new Uint8Array(l.bias.buffer, l.bias.byteOffset, l.bias.byteLength));
  }
  return h.digest('hex');
}

function fingerprint(
  o: FineTuneOptions,
  s: Settings,
  ds: Dataset,
  val: number[],
  tfliteSha: string,
  /** sha256 of the `from` model, when the run starts from one. */
  fromSha?: string,
): RunConfig {
  const items = createHash('sha256');
  for (const it of ds.items) items.update(`${it.path}\u0000${it.label}\u0000${it.group}\n`);
  return {
    tfliteSha256: tfliteSha,
    ...(fromSha ? { from: fromSha } : {}),
    data: ds.sources.map((src) => src.path),
    classes: ds.classes,
    items: items.digest('hex').slice(0, 16),
    validationItems: createHash('sha256').update(val.join(',')).digest('hex').slice(0, 16),
    crop: o.crop,
    cropPadding: o.cropPadding,
    seed: o.seed,
    valFraction: o.valFraction,
    sourceWeights: o.sourceWeights ?? {},
    l2Grid: o.l2Grid ?? DEFAULT_L2_GRID,
    trainFromBlock: s.trainFromBlock,
    epochs: s.epochs,
    batchSize: s.batchSize,
    // Only when used, so checkpoints from before the option still resume.
    ...(s.accumulate > 1 ? { accumulate: s.accumulate } : {}),
    lr: s.lr,
    headLr: s.headLr,
    weightDecay: s.weightDecay,
    warmupEpochs: s.warmupEpochs,
    labelSmoothing: s.labelSmoothing,
    augment: s.augment,
    keep: s.keep,
    patience: s.keep === 'best' ? s.patience : null,
  };
}
