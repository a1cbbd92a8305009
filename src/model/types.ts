import type { Box } from '../imaging/types.js';

/**
 * Why a result needs a person's review:
 * - `low_confidence`: the top probability is below the card's review threshold;
 * - `unfamiliar_cell`: the cell lies far, in feature space, from every class the model was trained on
 *   (another cell type, debris, an artefact);
 * - `unfamiliar_image`: the crop's stain, optics or texture lie far from every lab the model learned from;
 * - `damaged_image`: the decoder warned, or much of the image is blank or transparent;
 * - `no_cell`: no white cell was found (an image only).
 */
export const REVIEW_REASONS = [
  'low_confidence',
  'unfamiliar_cell',
  'unfamiliar_image',
  'damaged_image',
  'no_cell',
] as const;
export type ReviewReason = (typeof REVIEW_REASONS)[number];

/** Each review reason as a person would say it (the web app and the PDF report). */
export const REVIEW_REASON_TEXT: Record<ReviewReason, string> = {
  low_confidence: 'low confidence',
  unfamiliar_cell: 'unlike the cell types it knows',
  unfamiliar_image: 'image unlike its training labs',
  damaged_image: 'damaged image',
  no_cell: 'no white cell found',
};

/** Reasons without repeats, in REVIEW_REASONS order, so every output lists them the same way. */
export function orderReasons(reasons: Iterable<ReviewReason>): ReviewReason[] {
  const set = new Set(reasons);
  return REVIEW_REASONS.filter((r) => set.has(r));
}

/** Class probabilities and the decision drawn from them for one image or one cell. */
export interface Prediction {
  label: string;
  confidence: number;
  /** Calibrated probability of every class the model knows, in the model card's class order. */
  probabilities: Record<string, number>;
  /** True when any review reason applies. */
  needsReview: boolean;
  /** Every reason that applies, in REVIEW_REASONS order; empty when the result needs no review. */
  reviewReasons: ReviewReason[];
  /**
   * How far the cell and its image lie from the training data, in units of the review threshold (above 1 is
   * flagged); absent for a model without a familiarity reference.
   */
  distance?: { cell: number; image: number };
}

/** One located white cell and what the model says of it. */
export interface CellPrediction extends Prediction {
  box: Box;
}

/**
 * What the model says of one image. For a field of view, `cells` holds every located white cell and the
 * image-level fields repeat the most confident cell. When the model crops to cells and none is found,
 * `label` is null, `probabilities` is empty and `message` says so: no guess is made.
 */
export interface ImagePrediction {
  label: string | null;
  confidence: number;
  probabilities: Record<string, number>;
  /** True when any of its cells needs review, when no cell was found, or when the image is damaged. */
  needsReview: boolean;
  /** The union of its cells' reasons and the image's own (`damaged_image`). */
  reviewReasons: ReviewReason[];
  distance?: { cell: number; image: number };
  cells: CellPrediction[];
  message?: string;
}

/** The model card written beside model.onnx (model.json). */
/** How an int8 model was derived from its float model (`export --int8`). */
export interface QuantizationRecord {
  format: string;
  weights: string;
  activations: string;
  calibration: {
    method: string;
    percentile?: number;
    images: number;
    skipped: number;
    seed: number;
    sources: string[];
  };
  quantized: { conv: number; gemm: number; add: number; clipsFolded: number; tensors: number };
  /** Parts of the graph kept in float (node-name prefixes). */
  float: string[];
  /** The float model it was made from. */
  from: { modelFile: string; modelSha256: string };
  /** How the familiarity references were adapted to the int8 features. */
  familiarity?: string;
  /** The float model's familiarity thresholds (the card's own are the int8 model's). */
  floatThresholds?: { cell: number; image: number };
}

export interface ModelCard {
  name: string;
  version: string;
  classes: string[];
  createdAt: string;
  software: { name: string; version: string };
  modelFile: string;
  modelSha256: string;
  backbone: {
    name: string;
    sha256: string;
    featureBlocks: string[];
    featureDim: number;
    attribution: string;
    /** Present when the backbone's weights were fine-tuned (its features differ from the pretrained ones). */
    fineTuned?: { fromBlock: number; weightsSha256: string; backboneId: string };
  };
  preprocessing: {
    version: number;
    inputSize: number;
    /** 'whole' resizes the whole image; 'cell' crops a square around each located white cell first. */
    crop: 'whole' | 'cell';
    cropPadding: number;
    resize: string;
    normalization: string;
  };
  temperature: number;
  reviewThreshold: number;
  head: {
    kind: string;
    l2: number;
    optimizer: string;
    iterations: number;
    l2Grid: number[];
    /** Present when the head was trained jointly with the backbone's top blocks. */
    fineTuning?: FineTuningRecord;
  };
  training: {
    counts: Record<string, Record<string, number>>;
    augmentedViews: number;
    seed: number;
    sources: { name: string; path: string; weight: number }[];
  };
  validation: {
    n: number;
    accuracy: number;
    macroF1: number;
    ece: number;
    perSource: Record<string, { n: number; accuracy: number }>;
  };
  /**
   * Present when the model averages the logits of several views of each crop (its 8 flips and quarter turns)
   * at prediction time, which it then does unless asked to be fast. Calibrated and scored on the same
   * validation images as `temperature` and `validation`, which describe one view.
   */
  testTimeAugmentation?: TestTimeAugmentation;
  /** Present when the model file computes distances to its training data (`unfamiliar_*` reasons). */
  familiarity?: FamiliarityRecord;
  /** Present on an int8 model: how it was quantized, and from which float model. */
  quantization?: QuantizationRecord;
  /**
   * The training images' per-channel statistics of every convolution's output, in a side file beside the
   * model: what `hematovision adapt` aligns a lab's images to (the lab has not got the training data).
   */
  activationStats?: ActivationStatsRecord;
  /** Present when the model is another model aligned to a lab's unlabelled images (`hematovision adapt`). */
  adaptation?: AdaptationRecord;
  /** Present when the model's head was retrained on a lab's reviewed cells (POST /api/v1/adaptations). */
  reviewedCells?: ReviewedCellsRecord;
  license: string;
  intendedUse: string;
}

export interface TestTimeAugmentation {
  views: number;
  transforms: string;
  /** Divides the averaged logits (fitted on validation like `temperature`). */
  temperature: number;
  reviewThreshold: number;
  validation: ModelCard['validation'];
}

/** How a fine-tuned model was trained, as its card records it. */
export interface FineTuningRecord {
  /** Blocks ≥ this (0 = all) were trained; MobileNetV2 has blocks 0–17. */
  fromBlock: number;
  /** Epochs run (early stopping may end before maxEpochs) and the one whose weights were kept. */
  epochs: number;
  maxEpochs: number;
  /** Lowest validation NLL (0 = the starting point). */
  bestEpoch: number;
  /** 'best': the weights of bestEpoch are shipped; 'last': those of the last epoch (a fixed schedule). */
  keep: 'best' | 'last';
  keptEpoch: number;
  /** Updates made; with `accumulate`, each adds up that many batches' gradients. */
  steps: number;
  batchSize: number;
  accumulate?: number;
  /** Peak learning rates (linear warm-up, then cosine to 0). */
  lr: number;
  headLr: number;
  warmupEpochs: number;
  weightDecay: number;
  labelSmoothing: number;
  /** Early stopping's patience; null with keep 'last', which runs every epoch. */
  patience: number | null;
  augmentation: string;
  initialHead: string;
  /** The model whose backbone the run started from, instead of the ImageNet weights (`train --from`). */
  startedFrom?: { name: string; sha256: string };
}

/** One familiarity reference as the card describes it; its numbers live in the model file. */
export interface FamiliarityCheck {
  /** Distances above this are flagged (chosen on validation rows as the given quantile). */
  threshold: number;
  quantile: number;
  /** The backbone feature columns read, the centres (classes or training labs) and the eigenvectors kept. */
  columns: [number, number];
  components: string[];
  rank: number;
}

export interface FamiliarityRecord {
  method: string;
  cell: FamiliarityCheck;
  image: FamiliarityCheck;
  /**
   * Block heads whose disagreement is part of `unfamiliar_cell` (model/disagreement.ts): the feature blocks
   * they read and each training lab's threshold (the quantile of its validation cells' disagreement).
   */
  disagreement?: {
    method: string;
    quantile: number;
    blocks: [number, number][];
    thresholds: Record<string, number>;
  };
  /**
   * Stored training cells whose k-th nearest is part of `unfamiliar_cell` (model/neighbours.ts): how many,
   * on how many directions, and each training lab's threshold.
   */
  neighbours?: {
    method: string;
    quantile: number;
    k: number;
    dims: number;
    rows: number;
    thresholds: Record<string, number>;
  };
  /** Share of validation images the familiarity checks flag, in all and by reason. */
  validation?: { n: number; reviewRate: number; byReason: Record<string, number> };
  /**
   * The review budget (training/review-budget.ts): the low-confidence threshold was capped so that no
   * training lab has more than `budget` of its validation images flagged for any reason; `before` is the
   * threshold the accuracy target chose, `reviewRate` each lab's rate at the card's threshold.
   */
  reviewBudget?: { budget: number; before: number; reviewRate: Record<string, number> };
  /**
   * A model learned from reviewed cells (training/reviewed-familiarity.ts): the lab of those cells joined the
   * references under `name`, from `cells` cells, its new components' distances multiplied by `scales`.
   */
  reviewedLab?: { name: string; cells: number; scales: { cell: number; image: number }; method: string };
}

export interface ActivationStatsRecord {
  /** The side file's name, beside the model file. */
  file: string;
  sha256: string;
  /** Images measured, and how many came from each training source. */
  images: number;
  bySource: Record<string, number>;
  description: string;
  computedAt: string;
}

/** What a model was aligned on, and what of its parent was kept or changed. */
export interface AdaptationRecord {
  method: string;
  /** The folders given (their names only), the image files found in them and those whose crops were used. */
  folders: string[];
  found: number;
  images: number;
  /** Images read but unusable (unreadable, or no white cell found); the rest of `found` was not sampled. */
  skipped: number;
  /** Images the statistics were measured on (an even sample of `images` when there are more). */
  statsImages: number;
  date: string;
  parent: { name: string; version: string; modelSha256: string };
  /** Alignment passes run, and the largest channel mismatch left (in reference standard deviations). */
  passes: number;
  residual: { mean: number; std: number; medianMean: number; medianStd: number };
  /** Channels whose scale was clamped or which were only shifted (no spread on one side). */
  clampedChannels: number;
  familiarity: string;
  /** What still describes the parent, not this model (fitted on labelled data this model has not seen). */
  keptFromParent: string;
}

/** How a model was retrained on reviewed cells from the case store (training/reviewed.ts). */
export interface ReviewedCellsRecord {
  /**
   * How it learned: a new head on the base's frozen backbone, or the whole network fine-tuned from the base
   * (absent in older cards: 'head').
   */
  recipe?: 'head' | 'fine-tune';
  /** The model it was made from (a new head keeps its backbone and preprocessing). */
  from: { name: string; version: string; modelSha256: string };
  /** Reviewed cells per class used to train the head, and held back (grouped by image) to score it. */
  trained: Record<string, number>;
  heldOut: Record<string, number>;
  /** Reviewed cells per class the model's own head was trained on (all of them; absent in older cards). */
  final?: Record<string, number>;
  /** Fine-tuned: reviewed cells per class of the training part that calibrated temperature and threshold. */
  calibrationCells?: Record<string, number>;
  l2: number;
  /** l2's cross-validated NLL and accuracy on the training part, per candidate l2 (absent in older cards). */
  l2Cv?: { l2: number; nll: number; accuracy: number }[];
  /** Views per cell (the original and augmented ones; absent in older cards: 1). */
  views?: number;
  seed: number;
  /** What was kept from the base model and what was dropped, in words. */
  note: string;
}
