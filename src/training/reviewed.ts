/**
 * Learning from reviewed cells: a new head on the active model's own (frozen) backbone features of the cells
 * reviewers confirmed or corrected, trained on most of them and scored, beside the active model, on the rest
 * (held back whole images at a time, so no image's cells sit on both sides). The backbone, preprocessing,
 * temperature and review threshold are the base model's, and so are its familiarity checks: the backbone is
 * frozen, so they measure the candidate's features as they measured the base's (reviewed-familiarity.ts).
 * Its test-time calibration was fitted on the old head's averaged logits and is left out.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatasetError } from '../errors.js';
import { decodeImage } from '../imaging/decode.js';
import { cropSquare, resizeRgb } from '../imaging/preprocess.js';
import type { Box } from '../imaging/types.js';
import { cardPathFor } from '../model/classifier.js';
import { buildClassifierModel } from '../model/classifier-graph.js';
import { FeatureExtractor } from '../model/feature-extractor.js';
import { readFloatInitializers } from '../model/onnx/graph-builder.js';
import { argmax, softmaxRows } from '../model/softmax.js';
import { writeInput } from '../model/tensor.js';
import type { ModelCard } from '../model/types.js';
import { writeAtomic } from './files.js';
import { fitSoftmaxHead, foldStandardisation } from './head.js';
import { evaluatePredictions } from './metrics.js';
import { cardHeader } from './model-card.js';
import { carryFamiliarity } from './reviewed-familiarity.js';
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

/** One model on the held-back cells. */
export interface HeldOutScore {
  accuracy: number;
  macroF1: number;
  /** Share of cells flagged for review (confidence below the review threshold, or unfamiliar). */
  reviewRate: number;
  /** Wrong and not flagged: the errors nobody is asked to look at. */
  silentErrors: number;
  silentErrorRate: number;
  perClass: Record<string, { support: number; precision: number; recall: number; f1: number }>;
}

export interface ReviewedResult {
  modelPath: string;
  card: ModelCard;
  counts: {
    trained: Record<string, number>;
    heldOut: Record<string, number>;
    ignored: Record<string, number>;
  };
  comparison: { heldOut: number; active: HeldOutScore; candidate: HeldOutScore };
}

const BATCH = 16;

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
  const x = new Float32Array(items.length * d);
  try {
    for (let start = 0; start < items.length; start += BATCH) {
      const rows = usable.slice(start, start + BATCH);
      const input = new Float32Array(rows.length * 3 * size * size);
      for (const [slot, i] of rows.entries()) {
        const cell = o.cells[i];
        const image = await decodeImage(Buffer.from(cell.image));
        const crop = cell.box ? cropSquare(image, cell.box, base.preprocessing.cropPadding) : image;
        writeInput(await resizeRgb(crop, size, size), input, slot);
      }
      x.set(await extractor.extract(input, rows.length, size), start * d);
      progress(
        0.02 + (0.8 * (start + rows.length)) / items.length,
        'Backbone features of the reviewed cells',
      );
    }
  } finally {
    await extractor.close();
  }

  const pick = (keep: (i: number) => boolean) => {
    const idx = items.flatMap((_, i) => (keep(i) ? [i] : []));
    const xs = new Float32Array(idx.length * d);
    idx.forEach((r, j) => xs.set(x.subarray(r * d, (r + 1) * d), j * d));
    return { idx, x: xs, y: Int32Array.from(idx, (i) => items[i].labelIndex) };
  };
  const train = pick((i) => !held.has(i));
  const test = pick((i) => held.has(i));

  progress(0.85, 'Training the head');
  // Classes weigh the same however many cells of each were reviewed.
  const perClass = new Array<number>(k).fill(0);
  for (const y of train.y) perClass[y]++;
  const weights = Float32Array.from(train.y, (y) => train.y.length / (k * perClass[y]));
  const l2 = base.head.l2;
  const fit = fitSoftmaxHead(train.x, train.idx.length, d, train.y, k, {
    l2,
    sampleWeights: weights,
    tol: 1e-3,
  });
  const folded = foldStandardisation(fit.head);

  progress(0.9, 'Scoring the candidate beside the active model on the held-back cells');
  const name = `${base.name}-reviewed`;
  const headOnly = buildClassifierModel(
    bytes,
    { weight: folded.weight, bias: folded.bias, k, d },
    { temperature: base.temperature, classes, metadata: { 'hematovision.name': name } },
  );
  const familiarity = carryFamiliarity(bytes, base, headOnly);
  // Both models flag the same held-back cells as unfamiliar (same features, same references).
  const unfamiliar = familiarity?.flags(test.x, test.idx.length, d);
  const init = readFloatInitializers(bytes);
  const activeW = init.get('head/W');
  const activeB = init.get('head/b');
  if (!activeW || !activeB || activeW.length !== k * d)
    throw new DatasetError('The active model has no head this version can read.', 'bad_model');
  const score = (w: Float32Array, b: Float32Array) =>
    heldOutScore(test.x, test.y, w, b, d, classes, base.temperature, base.reviewThreshold, unfamiliar);
  const comparison = {
    heldOut: test.idx.length,
    active: score(activeW, activeB),
    candidate: score(folded.weight, folded.bias),
  };

  progress(0.95, 'Writing the candidate model');
  const onnx = familiarity?.onnx ?? headOnly;
  const count = (idx: number[]) =>
    Object.fromEntries(classes.map((c, ci) => [c, idx.filter((i) => items[i].labelIndex === ci).length]));
  const counts = { trained: count(train.idx), heldOut: count(test.idx), ignored };
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
      optimizer: 'L-BFGS, full batch, class-balanced',
      iterations: fit.iterations,
      fineTuning: undefined,
    },
    validation: {
      n: comparison.heldOut,
      accuracy: comparison.candidate.accuracy,
      macroF1: comparison.candidate.macroF1,
      ece: 0,
      perSource: {
        'held-back reviewed cells': { n: comparison.heldOut, accuracy: comparison.candidate.accuracy },
      },
    },
    reviewedCells: {
      from: { name: base.name, version: base.version, modelSha256: base.modelSha256 },
      trained: counts.trained,
      heldOut: counts.heldOut,
      l2,
      seed: o.seed,
      note:
        "Backbone, preprocessing, temperature and review threshold are the base model's. " +
        (familiarity
          ? 'Its familiarity checks (unfamiliar_cell, unfamiliar_image) are carried over as they are: the ' +
            "backbone is frozen, so their references and thresholds measure this model's features as they " +
            "measured the base's. "
          : 'The base model has no familiarity checks, so this one has none. ') +
        'Its test-time augmentation calibration is not carried over (it was fitted on the old head).',
    },
  };
  const modelPath = join(o.outDir, 'model.onnx');
  writeAtomic(modelPath, onnx);
  writeAtomic(join(o.outDir, 'model.json'), Buffer.from(JSON.stringify(card, null, 2) + '\n'));
  progress(1, 'Done');
  return { modelPath, card, counts, comparison };
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
  const logits = new Float32Array(n * k);
  for (let r = 0; r < n; r++)
    for (let c = 0; c < k; c++) {
      let s = b[c];
      for (let j = 0; j < d; j++) s += w[c * d + j] * x[r * d + j];
      logits[r * k + c] = s;
    }
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
    perClass: m.perClass,
  };
}
