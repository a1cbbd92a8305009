/**
 * Fine-tuning: the top blocks of MobileNetV2 and the linear head trained together on augmented cell crops.
 *
 * Same data handling as trainModel (scan, grouped split with the same seed, preprocessing), so validation
 * numbers compare. Each image is decoded, located and cropped once; every epoch augments the crops afresh
 * (in a helper thread, while ONNX Runtime computes). The head starts from the frozen-backbone head (L-BFGS on
 * the unaugmented features of the training split, l2 chosen on validation), so fine-tuning starts from a good
 * point. Every epoch ends with validation, early stopping on validation NLL and a checkpoint that --resume
 * continues from exactly: batch order and augmentation are functions of (seed, epoch), never of timing.
 *
 * The stages live beside this file: settings (options, defaults, checks), resume (fingerprint, checkpoint
 * lookup), crops, starting (backbone and starting head), loop, validator and export.
 */
import { resolve } from 'node:path';
import { DatasetError } from '../../errors.js';
import type { Preprocessing } from '../../model/inputs.js';
import type { NetSpec } from '../../model/net/spec.js';
import type { ModelCard } from '../../model/types.js';
import { scanDatasets, type Dataset } from '../dataset.js';
import type { L2Score } from '../head.js';
import { calibrateHeldOut } from '../held-out.js';
import type { Metrics } from '../metrics.js';
import { preprocessingFor } from '../model-card.js';
import { groupedStratifiedSplit } from '../split.js';
import { markFinished, type EpochSummary } from './checkpoint.js';
import { prepareData, type CropFailure, type MemoryCrops } from './crops.js';
import { testTimeCalibrator, writeFineTuned } from './export.js';
import { trainEpochs } from './loop.js';
import { checkpointPaths, findCheckpoint, fingerprint } from './resume.js';
import { settingsOf, type FineTuneOptions } from './settings.js';
import { readTflite, startingModel, startingNetwork } from './starting.js';

export type { EpochSummary } from './checkpoint.js';
export { prepareCrops, type CropFailure, type MemoryCrops } from './crops.js';
export { augmentationNote, backboneWeightsSha256 } from './export.js';
export {
  FINE_TUNE_DEFAULTS,
  FINE_TUNE_LIMITS,
  LAST_BLOCK,
  type FineTuneOptions,
  type StepProgress,
} from './settings.js';
export { SHARED_TFLITE } from './starting.js';
export type { ValidationScore } from './validator.js';

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
  failed: CropFailure[];
  /** The network with the kept weights (head on raw features), as exported. */
  spec: NetSpec;
  resumed: boolean;
  seconds: { prepare: number; init: number; train: number; total: number };
}

/**
 * Items held in memory instead of `o.data`'s folders (reviewed cells): the dataset they form, its split
 * (the caller's: `o.valFraction` is not used to draw it), their crops and the preprocessing those follow.
 */
export interface FineTuneSource {
  ds: Dataset;
  split: { train: number[]; val: number[] };
  memory: MemoryCrops;
  prep: Preprocessing;
}

/**
 * Fine-tunes blocks ≥ trainFromBlock and the head, then calibrates and writes model.onnx + model.json. The
 * data is `o.data`'s folders, or `source`'s items when given (`o.data` is then not read).
 */
export async function fineTuneModel(o: FineTuneOptions, source?: FineTuneSource): Promise<FineTuneResult> {
  const t0 = performance.now();
  const stage = o.onStage ?? (() => {});
  const s = settingsOf(o);
  const tflite = readTflite(o.tflite);
  const start = o.from ? startingModel(o.from, tflite.graph) : null;

  stage('Scanning data');
  const { ds, split } = source ?? (await scanAndSplit(o));
  const prep = source?.prep ?? preprocessingFor(o.crop, o.cropPadding);

  const outDir = resolve(o.out);
  const ckptPaths = checkpointPaths(outDir);
  const config = fingerprint(o, s, ds, split.val, tflite.graph.sha256, start?.sha256);
  const ckpt = findCheckpoint(ckptPaths, config, !!o.resume);

  stage('Cropping every image once');
  const tp = performance.now();
  const data = await prepareData(ds, split, prep, o, source?.memory);
  const prepareSeconds = (performance.now() - tp) / 1000;

  const ti = performance.now();
  const resumed = ckpt ? { ckpt, dir: ckptPaths.dir } : null;
  const { spec, initial } = await startingNetwork({ o, s, ds, tflite, start, data, resumed, stage });
  const initSeconds = (performance.now() - ti) / 1000;

  const loop = await trainEpochs({ o, s, spec, ds, data, ckpt, ckptPaths, config, initial, stage });
  const { state, keptEpoch } = loop;

  const held = calibrateHeldOut(loop.valLogits, data.valItems, ds, o.reviewTargetAccuracy);
  const { card, modelPath, cardPath } = await writeFineTuned({
    o,
    s,
    spec,
    tfliteSha256: tflite.graph.sha256,
    startedFrom: start ? { name: start.name, sha256: start.sha256 } : undefined,
    ds,
    prep,
    state,
    keptEpoch,
    initial,
    held,
    outDir,
    testTime: testTimeCalibrator(o, s, ds, data, stage),
    onWrite: () => stage('Writing the model'),
  });
  markFinished(ckptPaths.file);

  return {
    card,
    modelPath,
    cardPath,
    validation: held.metrics,
    history: state.history,
    bestEpoch: state.bestEpoch,
    keptEpoch,
    l2Table: initial.l2Table,
    dataset: ds,
    failed: data.failed,
    spec,
    resumed: ckpt !== null,
    seconds: {
      prepare: prepareSeconds,
      init: initSeconds,
      train: loop.seconds,
      total: (performance.now() - t0) / 1000,
    },
  };
}

/** The datasets and their grouped split (the same as frozen training's for the same seed). */
async function scanAndSplit(o: FineTuneOptions) {
  const ds = await scanDatasets(o.data, { classes: o.classes });
  if (ds.classes.length < 2) throw new DatasetError('Training needs at least two classes.');
  const split = groupedStratifiedSplit(ds.items, { valFraction: o.valFraction, seed: o.seed });
  if (split.train.length === 0 || split.val.length === 0)
    throw new DatasetError('One side of the split is empty: add images (or groups) per class.');
  return { ds, split };
}
