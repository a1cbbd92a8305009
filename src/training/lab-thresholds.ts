/**
 * The per-lab thresholds the block heads and the nearest-cells check share: a score is compared with the
 * threshold of the training lab the row looks most like (the image reference's nearest component), exactly as
 * the model file picks the threshold, so the thresholds are chosen the way they are applied.
 */
import { DatasetError } from '../errors.js';
import { quantile } from './quantile.js';

/** Validation rows (n×D features) with the training lab each looks most like, found once by the caller. */
export interface LabelledValidation {
  x: Float32Array;
  n: number;
  /** The row's lab: the image reference's nearest component (model/familiarity.ts nearestComponent). */
  lab: Int32Array;
  /** How many labs there are (the image reference's components). */
  labs: number;
}

/**
 * One threshold per lab, the q-quantile of its validation rows' scores, and which rows are over theirs. A lab
 * with too few validation rows of its own takes the pooled quantile; a pooled quantile that is not over zero
 * means the scores tell nothing apart, and throws `nothingToFit`.
 */
export function labThresholds(
  scores: Float64Array,
  val: Pick<LabelledValidation, 'lab' | 'labs'>,
  q: number,
  nothingToFit: string,
): {
  thresholds: Float32Array<ArrayBuffer>;
  /** 1 for each row whose score is over its lab's threshold. */
  flagged: Uint8Array<ArrayBuffer>;
} {
  const byLab: number[][] = Array.from({ length: val.labs }, () => []);
  for (let r = 0; r < scores.length; r++) byLab[val.lab[r]].push(scores[r]);
  const pooled = quantile(scores, q);
  if (!(pooled > 0)) throw new DatasetError(nothingToFit);
  const thresholds = Float32Array.from(byLab, (s) => (s.length >= 20 ? quantile(s, q) : pooled));
  return {
    thresholds,
    flagged: Uint8Array.from(scores, (v, r) => (v > thresholds[val.lab[r]] ? 1 : 0)),
  };
}
