/**
 * Fits the block heads whose disagreement marks a cell of a type the model never learned
 * (model/disagreement.ts): three softmax heads on the training rows, each reading other backbone blocks
 * (the early two together, the middle one, the last one), and one threshold per training lab, the given
 * quantile of the disagreement of that lab's validation rows (training/lab-thresholds.ts).
 */
import type { DisagreementHeads } from '../model/disagreement.js';
import { disagreementOf } from '../model/disagreement.js';
import { fitSoftmaxHead, foldStandardisation } from './head.js';
import { labThresholds, type LabelledValidation } from './lab-thresholds.js';

/**
 * Fixed before the run that measured it (BENCHMARKS.md, "What the model knows and flags"): a strong penalty,
 * because the heads that told left-out classes apart in scripts/loco-study/ were soft, early-stopped ones; and
 * each lab's 95th percentile, so the check alone flags at most 5 % of a known lab's own cells.
 */
export const DISAGREEMENT_DEFAULTS = { l2: 1e-2, maxIter: 200, quantile: 0.95 };

/** The feature blocks the heads read, from the backbone's block sizes; null when there are fewer than four. */
export function disagreementBlocks(featureDims: number[]): [number, number][] | null {
  if (featureDims.length < 4) return null;
  const [a, b, c] = featureDims;
  const end = featureDims.reduce((s, x) => s + x, 0);
  return [
    [0, a + b],
    [a + b, a + b + c],
    [a + b + c, end],
  ];
}

/**
 * Fits the heads on n training rows of n×D features (labels in [0, k), rows weighted so every class of every
 * source weighs the same) and their per-lab thresholds on the validation rows (each with its lab).
 */
export function fitDisagreement(
  train: { x: Float32Array; n: number; label: ArrayLike<number>; source: ArrayLike<number> },
  val: LabelledValidation,
  D: number,
  k: number,
  blocks: [number, number][],
  cellScale: number,
  o: Partial<typeof DISAGREEMENT_DEFAULTS> = {},
): {
  heads: DisagreementHeads;
  /** 1 for each validation row whose disagreement is over its lab's threshold. */
  flagged: Uint8Array;
} {
  const opts = { ...DISAGREEMENT_DEFAULTS, ...o };
  const y = Int32Array.from(train.label);
  const counts = new Map<string, number>();
  const key = (r: number) => `${train.label[r]}|${train.source[r]}`;
  for (let r = 0; r < train.n; r++) counts.set(key(r), (counts.get(key(r)) ?? 0) + 1);
  const sampleWeights = Float32Array.from({ length: train.n }, (_, r) => 1 / counts.get(key(r))!);
  const weights: Float32Array[] = [];
  const biases: Float32Array[] = [];
  for (const [start, end] of blocks) {
    const d = end - start;
    const x = new Float32Array(train.n * d);
    for (let r = 0; r < train.n; r++) x.set(train.x.subarray(r * D + start, r * D + end), r * d);
    const fit = fitSoftmaxHead(x, train.n, d, y, k, {
      l2: opts.l2,
      sampleWeights,
      maxIter: opts.maxIter,
    });
    const folded = foldStandardisation(fit.head);
    weights.push(folded.weight);
    biases.push(folded.bias);
  }
  const scores = Float64Array.from({ length: val.n }, (_, r) =>
    disagreementOf({ blocks, weights, biases }, val.x, D, r),
  );
  const { thresholds, flagged } = labThresholds(
    scores,
    val,
    opts.quantile,
    'The block heads agree on every validation cell: nothing to fit.',
  );
  return { heads: { blocks, weights, biases, thresholds, cellScale }, flagged };
}
