/**
 * The familiarity checks of a model fine-tuned on reviewed cells (training/reviewed-finetune.ts). The parent's
 * references measure the parent's features and were fitted on its training images, which the server does
 * not hold; a fine-tuned backbone computes other features, so they cannot be carried over. Instead the
 * checks are fitted as `train` fits a model's own (training/familiarize.ts): on the candidate's features of
 * the cells it was trained on (one lab: the reviewed lab), thresholds on the calibration cells, the review
 * threshold then capped to the review budget. The candidate so flags cells and images unlike the reviewed
 * lab's, which is what it learned from; the parent's labs are no longer its reference.
 */
import { argmax, softmaxRows } from '../model/softmax.js';
import type { FamiliarityRecord } from '../model/types.js';
import type { FamiliarityReferences } from '../model/familiarity.js';
import { fitFamiliarity, type FAMILIARITY_DEFAULTS } from './familiarity.js';
import { familiarityFlags } from './reviewed-familiarity.js';
import { capReviewThreshold, REVIEW_BUDGET } from './review-budget.js';

/** fitFamiliarity's fewest validation rows: with fewer calibration cells the candidate gets no checks. */
export const MIN_FAMILIARITY_CALIBRATION_CELLS = 20;

export const REVIEWED_LAB = 'reviewed lab';

export interface FineTunedFamiliarity {
  references: FamiliarityReferences;
  /** The card's record, the review budget's effect included. */
  record: FamiliarityRecord;
  /** The review threshold capped so the calibration cells' review rate stays within the budget. */
  reviewThreshold: number;
  /** 1 for each row of n×d raw features that the checks flag. */
  flags: (x: Float32Array, n: number, d: number) => Uint8Array;
}

/**
 * Fits the checks on the candidate's features of its training cells (`isVal` 0) with thresholds on its
 * calibration cells (`isVal` 1), or null when there are too few calibration cells.
 */
export function fitFineTunedFamiliarity(
  f: { x: Float32Array; n: number; d: number; label: Int32Array; isVal: Uint8Array },
  classes: string[],
  blockDims: number[],
  head: { w: Float32Array; b: Float32Array; temperature: number; reviewThreshold: number },
  o: Partial<typeof FAMILIARITY_DEFAULTS> & { seed: number },
): FineTunedFamiliarity | null {
  const calibration = f.isVal.reduce((a, v) => a + v, 0);
  if (calibration < MIN_FAMILIARITY_CALIBRATION_CELLS) return null;
  const { references, record, val } = fitFamiliarity(
    { ...f, source: new Int32Array(f.n) },
    classes,
    [REVIEWED_LAB],
    blockDims,
    o,
  );
  // The review budget, as familiarize applies it: the calibration cells' confidences under the candidate's head.
  const k = classes.length;
  const logits = new Float32Array(val.rows.length * k);
  val.rows.forEach((r, j) => {
    for (let c = 0; c < k; c++) {
      let s = head.b[c];
      for (let i = 0; i < f.d; i++) s += head.w[c * f.d + i] * f.x[r * f.d + i];
      logits[j * k + c] = s;
    }
  });
  const p = softmaxRows(logits, k, head.temperature);
  const budget = capReviewThreshold(
    val.rows.map((_, j) => ({
      confidence: p[j * k + argmax(p, j, k)],
      flagged: val.flagged[j] === 1,
      source: 0,
    })),
    [REVIEWED_LAB],
    head.reviewThreshold,
  );
  const full: FamiliarityRecord = {
    ...record,
    reviewBudget: { budget: REVIEW_BUDGET, before: head.reviewThreshold, reviewRate: budget.reviewRate },
  };
  return {
    references,
    record: full,
    reviewThreshold: budget.threshold,
    flags: (x, n, d) => familiarityFlags(references, full, x, n, d),
  };
}
