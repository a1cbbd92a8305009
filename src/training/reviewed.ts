/**
 * Learning from reviewed cells: a new head on the active model's own (frozen) backbone features of the cells
 * reviewers confirmed or corrected, three views a cell (as `train` augments), l2 chosen by cross-validation
 * grouped by image (reviewed-recipe.ts). Whole images are held back to score it beside the active model: the
 * head scored is trained, l2 chosen and familiarity widened on the training part only; the head stored is then
 * trained the same way on every reviewed cell (as `train` refits on all after choosing), and the result and
 * card say so. The backbone, preprocessing, temperature and review threshold are the base model's (a
 * temperature and line fitted on the training part's out-of-fold logits were measured worse: BENCHMARKS.md,
 * "Adapting to a lab from a few of its cells"); its familiarity checks are the base's widened to the reviewed cells' lab (reviewed-familiarity.ts). Its
 * test-time calibration was fitted on the old head's averaged logits and is left out.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AdaptationComparisonJson, HeldOutScore } from '../api/models.js';
import { DatasetError } from '../errors.js';
import { decodeImage } from '../imaging/decode.js';
import { cropSquare, resizeLinear } from '../imaging/preprocess.js';
import type { Box, RgbImage } from '../imaging/types.js';
import { cardPathFor } from '../model/classifier.js';
import { buildClassifierModel } from '../model/classifier-graph.js';
import { appendFamiliarity } from '../model/familiarity-graph.js';
import { FeatureExtractor } from '../model/feature-extractor.js';
import { augmentedViews } from '../model/inputs.js';
import { readFloatInitializers } from '../model/onnx/graph-builder.js';
import { argmax, softmaxRows } from '../model/softmax.js';
import { writeInput } from '../model/tensor.js';
import type { ModelCard } from '../model/types.js';
import { writeAtomic } from './files.js';
import { foldedLogits, foldStandardisation } from './head.js';
import { evaluatePredictions } from './metrics.js';
import { cardHeader } from './model-card.js';
import {
  familiarityFlags,
  parentFamiliarity,
  reviewedFamiliarity,
  reviewedLabScales,
} from './reviewed-familiarity.js';
import {
  cellData,
  REVIEWED_L2_GRID,
  trainReviewedHeads,
  type CellRows,
  type L2CvScore,
} from './reviewed-recipe.js';
import { groupedStratifiedSplit } from './split.js';

export interface ReviewedCell {
  image: Uint8Array;
  /** The cell's box in the image (null: the whole image, for a model that reads whole images). */
  box: Box | null;
  label: string;
  /**
   * Cells of one image share a group: never split across training and held-back. Give the image's sha256
   * (not a case id): the split is drawn from it, so the same reviewed images always split the same way.
   */
  group: string;
}

export interface ReviewedOptions {
  modelPath: string;
  cells: ReviewedCell[];
  outDir: string;
  minCellsPerClass: number;
  holdOutFraction: number;
  seed: number;
  onProgress?: (fraction: number, stage: string) => void;
}

export interface ReviewedResult {
  modelPath: string;
  card: ModelCard;
  counts: {
    /** Cells the scored head was trained on (the training part). */
    trained: Record<string, number>;
    /** Cells held back to score it (whole images). */
    heldOut: Record<string, number>;
    /** Cells the stored candidate's head was trained on: every usable reviewed cell. */
    final: Record<string, number>;
    ignored: Record<string, number>;
  };
  /** How the head was trained: l2 and its cross-validation, views per cell. */
  recipe: { kind: 'head'; l2: number; l2Cv: L2CvScore[]; folds: number; views: number };
  /** The scored head beside the active model on the held-back cells (api/models.ts, the one shape). */
  comparison: AdaptationComparisonJson;
}

const BATCH = 16;
/** Views per reviewed cell: the original and two augmented, as `train` uses by default (--views 3). */
export const REVIEWED_VIEWS = 3;

/** The augmentation seed of a cell's views: its image, its box and the job's seed. */
function viewSeed(cell: ReviewedCell, seed: number): number {
  return (seed ^ parseInt(createHash('sha256').update(cellKey(cell)).digest('hex').slice(0, 8), 16)) >>> 0;
}

/** The checks before any work: enough reviewed cells of every class the model knows, none of other classes. */
export function checkReviewed(
  classes: string[],
  cells: Pick<ReviewedCell, 'label'>[],
  minCellsPerClass: number,
): { usable: number[]; ignored: Record<string, number> } {
  const counts = new Map<string, number>();
  for (const c of cells) counts.set(c.label, (counts.get(c.label) ?? 0) + 1);
  const ignored = Object.fromEntries([...counts].filter(([l]) => !classes.includes(l)));
  if (classes.every((c) => !counts.has(c)) && cells.length > 0)
    throw new DatasetError(
      `The reviewed cells are labelled ${[...counts.keys()].join(', ')}; the active model knows ` +
        `${classes.join(', ')}: none in common, so there is nothing to learn for this model.`,
      'classes_mismatch',
    );
  const short = classes.filter((c) => (counts.get(c) ?? 0) < minCellsPerClass);
  if (short.length > 0)
    throw new DatasetError(
      `Too few reviewed cells: each class needs at least ${minCellsPerClass}; ` +
        short.map((c) => `${c} has ${counts.get(c) ?? 0}`).join(', ') +
        '. Review more cells of those classes, then start again.',
      'too_few_reviewed_cells',
    );
  const usable = cells.flatMap((c, i) => (classes.includes(c.label) ? [i] : []));
  return { usable, ignored };
}

/** A cell's place in a fixed order of the cells: image (group), then box, then label. */
/** A reviewed cell's crop as serving makes it: its stored box squared with the card's padding, resized. */
export async function reviewedCrop(cell: ReviewedCell, prep: ModelCard['preprocessing']): Promise<RgbImage> {
  const image = await decodeImage(Buffer.from(cell.image));
  const crop = cell.box ? cropSquare(image, cell.box, prep.cropPadding) : image;
  return resizeLinear(crop, prep.inputSize, prep.inputSize);
}

function cellKey(c: ReviewedCell): string {
  const b = c.box;
  const box = b ? [b.x, b.y, b.width, b.height].map((v) => v.toFixed(3).padStart(12, '0')).join(',') : '';
  return `${c.group}\0${box}\0${c.label}`;
}

/**
 * The checks, then the usable cells in a fixed order and their split into training and held-back: the
 * held-back images are chosen by a hash of their group (the image's sha256) with the seed, stratified by
 * class, so neither the cells' order nor the ids of the cases they came from change the split or the rows.
 */
export function splitReviewed(
  classes: string[],
  cells: ReviewedCell[],
  o: Pick<ReviewedOptions, 'minCellsPerClass' | 'holdOutFraction' | 'seed'>,
): {
  /** Indices into `cells`, in the fixed order (the rows of `items`). */
  usable: number[];
  items: { labelIndex: number; group: string; source: number }[];
  /** Indices into `items`. */
  split: { train: number[]; val: number[] };
  ignored: Record<string, number>;
} {
  const checked = checkReviewed(classes, cells, o.minCellsPerClass);
  const keys = cells.map(cellKey);
  const usable = [...checked.usable].sort((a, b) => (keys[a] < keys[b] ? -1 : keys[a] > keys[b] ? 1 : 0));
  const items = usable.map((i) => ({
    labelIndex: classes.indexOf(cells[i].label),
    group: cells[i].group,
    source: 0,
  }));
  const split = groupedStratifiedSplit(items, {
    valFraction: o.holdOutFraction,
    seed: o.seed,
    order: 'hashed',
  });
  const missing = classes.filter((_, c) => !split.val.some((i) => items[i].labelIndex === c));
  if (missing.length > 0)
    throw new DatasetError(
      `No held-back image of ${missing.join(', ')} to score the candidate on: review cells of more images.`,
      'too_few_reviewed_cells',
    );
  return { usable, items, split, ignored: checked.ignored };
}

export async function learnFromReviewed(o: ReviewedOptions): Promise<ReviewedResult> {
  const progress = o.onProgress ?? (() => {});
  const base = JSON.parse(readFileSync(cardPathFor(o.modelPath), 'utf8')) as ModelCard;
  const { classes } = base;
  const k = classes.length;
  const { usable, items, split, ignored } = splitReviewed(classes, o.cells, o);
  const held = new Set(split.val);

  progress(0.02, 'Backbone features of the reviewed cells');
  const bytes = readFileSync(o.modelPath);
  const extractor = await FeatureExtractor.load(o.modelPath);
  const d = extractor.featureDim;
  const size = base.preprocessing.inputSize;
  // Every cell in REVIEWED_VIEWS views (view 0 as it is, the rest augmented as `train` augments by default):
  // row r is view r % REVIEWED_VIEWS of item ⌊r / REVIEWED_VIEWS⌋.
  const views = REVIEWED_VIEWS;
  const x = new Float32Array(items.length * views * d);
  try {
    for (let start = 0; start < items.length; start += BATCH) {
      const rows = usable.slice(start, start + BATCH);
      const input = new Float32Array(rows.length * views * 3 * size * size);
      for (const [slot, i] of rows.entries()) {
        const cell = o.cells[i];
        const pixels = await reviewedCrop(cell, base.preprocessing);
        augmentedViews(pixels, views, viewSeed(cell, o.seed)).forEach((im, v) =>
          writeInput(im, input, slot * views + v),
        );
      }
      x.set(await extractor.extract(input, rows.length * views, size), start * views * d);
      progress(
        0.02 + (0.6 * (start + rows.length)) / items.length,
        'Backbone features of the reviewed cells',
      );
    }
  } finally {
    await extractor.close();
  }
  const cellRows: CellRows = {
    x,
    d,
    cell: Int32Array.from({ length: items.length * views }, (_, r) => Math.floor(r / views)),
    view: Int32Array.from({ length: items.length * views }, (_, r) => r % views),
  };
  const trainIdx = items.flatMap((_, i) => (held.has(i) ? [] : [i]));
  const allIdx = items.map((_, i) => i);
  const test = cellData(cellRows, items, split.val, k, true);

  progress(0.65, 'Choosing l2 by cross-validation and training the head');
  const { cv, scored, final } = trainReviewedHeads(cellRows, items, trainIdx, k, o.seed);
  const l2 = cv.l2;
  const scoredHead = foldStandardisation(scored.head);
  const folded = foldStandardisation(final.head);

  progress(0.75, 'Widening the familiarity checks to the reviewed lab');
  const name = `${base.name}-reviewed`;
  // The checks the candidate is scored with are widened by the training part only (held-back cells are
  // new to them, as they are to its head); the stored candidate's by every reviewed cell, at the same scales.
  const parentChecks = parentFamiliarity(bytes, base);
  const scales = parentChecks
    ? reviewedLabScales(parentChecks.refs, parentChecks.fam, cellRows, items, trainIdx, classes, o.seed)
    : null;
  const widened = (members: number[]) =>
    parentChecks && scales
      ? reviewedFamiliarity(parentChecks, classes, cellRows, items, members, scales)
      : null;
  const scoredChecks = widened(trainIdx);
  const familiarity = widened(allIdx);

  const headOnly = buildClassifierModel(
    bytes,
    { weight: folded.weight, bias: folded.bias, k, d },
    { temperature: base.temperature, classes, metadata: { 'hematovision.name': name } },
  );
  progress(0.9, 'Scoring the candidate beside the active model on the held-back cells');
  const activeFlags =
    parentChecks && familiarityFlags(parentChecks.refs, parentChecks.fam, test.x, test.n, d);
  const candidateFlags = scoredChecks?.flags(test.x, test.n, d);
  const init = readFloatInitializers(bytes);
  const activeW = init.get('head/W');
  const activeB = init.get('head/b');
  if (!activeW || !activeB || activeW.length !== k * d)
    throw new DatasetError('The active model has no head this version can read.', 'bad_model');
  const score = (
    w: Float32Array,
    b: Float32Array,
    cal: { temperature: number; reviewThreshold: number },
    flags?: Uint8Array | null,
  ) =>
    heldOutScore(test.x, test.y, w, b, d, classes, cal.temperature, cal.reviewThreshold, flags ?? undefined);
  const comparison = {
    heldOut: test.n,
    active: score(activeW, activeB, base, activeFlags),
    candidate: score(scoredHead.weight, scoredHead.bias, base, candidateFlags),
  };

  progress(0.95, 'Writing the candidate model');
  const onnx = familiarity ? appendFamiliarity(headOnly, familiarity.references) : headOnly;
  const count = (idx: number[]) =>
    Object.fromEntries(classes.map((c, ci) => [c, idx.filter((i) => items[i].labelIndex === ci).length]));
  const counts = { trained: count(trainIdx), heldOut: count(split.val), final: count(allIdx), ignored };
  /* eslint-disable @typescript-eslint/no-unused-vars */
  const { familiarity: _, testTimeAugmentation, activationStats, quantization, ...kept } = base;
  /* eslint-enable @typescript-eslint/no-unused-vars */
  const card: ModelCard = {
    ...kept,
    ...(familiarity ? { familiarity: familiarity.record } : {}),
    ...cardHeader(name, classes, onnx),
    head: {
      ...base.head,
      kind: 'softmax regression on standardised pooled features (folded into one Gemm), retrained on reviewed cells',
      l2,
      l2Grid: REVIEWED_L2_GRID,
      optimizer:
        `L-BFGS, full batch, class-balanced, ${views} views per cell; l2 chosen by ${cv.folds}-fold ` +
        'cross-validation grouped by image on the training part, then refit on every reviewed cell',
      iterations: final.iterations,
      fineTuning: undefined,
    },
    validation: heldBackValidation(comparison),
    reviewedCells: {
      recipe: 'head',
      from: { name: base.name, version: base.version, modelSha256: base.modelSha256 },
      trained: counts.trained,
      heldOut: counts.heldOut,
      final: counts.final,
      l2,
      l2Cv: cv.table,
      views,
      seed: o.seed,
      note:
        `The held-back score (validation) is of the head trained on the training part only (${trainIdx.length} ` +
        `cells), with l2 chosen on that part: the held-back cells took no part in it. This model's head was ` +
        `then trained on all ${allIdx.length} reviewed cells with the same l2, so it has not been scored on ` +
        'cells it never saw. ' +
        "Backbone, preprocessing, temperature and review threshold are the base model's. " +
        (familiarity
          ? "Its familiarity checks (unfamiliar_cell, unfamiliar_image) are the base's, widened to the " +
            "reviewed cells' lab (familiarity.reviewedLab): the base's components and thresholds are kept. "
          : 'The base model has no familiarity checks, so this one has none. ') +
        'Its test-time augmentation calibration is not carried over (it was fitted on the old head).',
    },
  };
  const modelPath = join(o.outDir, 'model.onnx');
  writeAtomic(modelPath, onnx);
  writeAtomic(join(o.outDir, 'model.json'), Buffer.from(JSON.stringify(card, null, 2) + '\n'));
  progress(1, 'Done');
  return {
    modelPath,
    card,
    counts,
    comparison,
    recipe: { kind: 'head', l2, l2Cv: cv.table, folds: cv.folds, views },
  };
}

/**
 * Accuracy, macro-F1, review rate and silent errors of a folded head (raw features) on labelled rows: a row
 * is flagged when its confidence is below the threshold or `flaggedOtherwise` flags it.
 */
export function heldOutScore(
  x: Float32Array,
  y: Int32Array,
  w: Float32Array,
  b: Float32Array,
  d: number,
  classes: string[],
  temperature: number,
  reviewThreshold: number,
  /** Rows flagged for another reason (unfamiliar), 1 each: never silent errors. */
  flaggedOtherwise?: Uint8Array,
): HeldOutScore {
  const k = classes.length;
  const n = y.length;
  const logits = foldedLogits(
    w,
    b,
    x,
    d,
    Array.from({ length: n }, (_, r) => r),
  );
  const p = softmaxRows(logits, k, temperature);
  const m = evaluatePredictions(y, p, classes);
  let flagged = 0;
  let silent = 0;
  for (let r = 0; r < n; r++) {
    const top = argmax(p, r, k);
    const review = p[r * k + top] < reviewThreshold || flaggedOtherwise?.[r] === 1;
    if (review) flagged++;
    else if (top !== y[r]) silent++;
  }
  return {
    accuracy: m.accuracy,
    macroF1: m.macroF1,
    reviewRate: n > 0 ? flagged / n : 0,
    silentErrors: silent,
    silentErrorRate: n > 0 ? silent / n : 0,
    ece: m.ece,
    perClass: m.perClass,
  };
}

/** A candidate card's `validation`: its score on the held-back reviewed cells (both recipes). */
export function heldBackValidation(comparison: AdaptationComparisonJson): ModelCard['validation'] {
  const { heldOut: n, candidate } = comparison;
  return {
    n,
    accuracy: candidate.accuracy,
    macroF1: candidate.macroF1,
    ece: candidate.ece ?? NaN,
    perSource: { 'held-back reviewed cells': { n, accuracy: candidate.accuracy } },
  };
}
