/** Fine-tuning's options: what a caller may set, the defaults of the bundled model's recipe, and their checks. */
import { DatasetError } from '../../errors.js';
import { AUGMENT_PRESETS, type AugmentPreset } from '../../imaging/augment.js';
import { DEFAULT_L2_GRID } from '../train.js';
import type { EpochSummary } from './checkpoint.js';

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

/** Every option that has a default, filled in and checked. */
export type Settings = Required<
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
> & { trainFromBlock: number; l2Grid: number[] };

/**
 * The accepted range of each numeric setting, inclusive: the one owner of these bounds, read by settingsOf
 * and by the CLI (which names its flags in the same message).
 */
export const FINE_TUNE_LIMITS = {
  epochs: [1, 1000],
  batchSize: [1, 256],
  accumulate: [1, 64],
  /** Learning rates: above the lower bound (0 excluded), up to the upper. */
  lr: [0, 0.5],
  headLr: [0, 0.5],
  weightDecay: [0, 0.5],
  warmupEpochs: [0, 100],
  labelSmoothing: [0, 0.5],
  patience: [1, 1000],
} as const satisfies Record<string, readonly [number, number]>;

export function settingsOf(o: FineTuneOptions): Settings {
  const d = FINE_TUNE_DEFAULTS;
  const from = o.trainFromBlock === 'all' ? 0 : (o.trainFromBlock ?? d.trainFromBlock);
  const s: Settings = {
    trainFromBlock: from,
    l2Grid: o.l2Grid ?? DEFAULT_L2_GRID,
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
  const L = FINE_TUNE_LIMITS;
  if (!Number.isInteger(from) || from < 0 || from > LAST_BLOCK)
    bad(`The first trained block must be 0–${LAST_BLOCK} (or 'all'), got ${o.trainFromBlock}.`);
  const within = (v: number, [lo, hi]: readonly [number, number]) => v >= lo && v <= hi;
  if (!Number.isInteger(s.epochs) || !within(s.epochs, L.epochs))
    bad(`Epochs must be a whole number in [${L.epochs.join(', ')}].`);
  if (!Number.isInteger(s.batchSize) || !within(s.batchSize, L.batchSize))
    bad(`The batch size must be a whole number in [${L.batchSize.join(', ')}].`);
  if (!Number.isInteger(s.accumulate) || !within(s.accumulate, L.accumulate))
    bad(`Accumulate must be a whole number of batches in [${L.accumulate.join(', ')}].`);
  for (const [k, v, r] of [
    ['lr', s.lr, L.lr],
    ['head lr', s.headLr, L.headLr],
  ] as const)
    if (!(v > r[0] && v <= r[1])) bad(`The ${k} must be in (${r.join(', ')}], got ${v}.`);
  if (!within(s.weightDecay, L.weightDecay)) bad(`Weight decay must be in [${L.weightDecay.join(', ')}].`);
  if (!within(s.warmupEpochs, L.warmupEpochs))
    bad(`Warm-up epochs must be in [${L.warmupEpochs.join(', ')}].`);
  if (!within(s.labelSmoothing, L.labelSmoothing))
    bad(`Label smoothing must be in [${L.labelSmoothing.join(', ')}].`);
  if (!Object.hasOwn(AUGMENT_PRESETS, s.augment))
    bad(`Unknown augmentation '${s.augment}': use ${Object.keys(AUGMENT_PRESETS).join(' or ')}.`);
  if (s.keep !== 'best' && s.keep !== 'last') bad(`Keep 'best' or 'last', got '${s.keep}'.`);
  if (!Number.isInteger(s.patience) || !within(s.patience, L.patience))
    bad(`Patience must be a whole number in [${L.patience.join(', ')}].`);
  return s;
}
