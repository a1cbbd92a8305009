/**
 * Classification metrics from class probabilities: accuracy, per-class precision/recall/F1, macro-F1,
 * confusion matrix and expected calibration error (ECE) with its reliability bins.
 *
 * Conventions (fixed here so reports stay comparable):
 * - The prediction is the arg-max of each probability row; ties go to the lower class index.
 * - Precision of a class that is never predicted is 0, recall of a class with no support is 0, and F1 is 0
 *   when precision + recall = 0 (as sklearn with zero_division=0).
 * - Macro-F1 averages per-class F1 over the classes that occur in the data OR are predicted at least once.
 *   A class absent from both has no evidence either way, so it neither drags the mean to 0 (sklearn's
 *   default when `labels` lists it) nor lifts it. A class predicted but never present still counts (F1 = 0):
 *   false alarms must cost something.
 * - ECE uses 15 equal-width bins over the top-1 confidence, each bin (lo, hi] (the first also holds 0), and
 *   weighs |accuracy − mean confidence| of each bin by its share of samples (Guo et al., 2017).
 * - A sample the model gave no answer for (`unanswered`, e.g. no white cell found: the product does not
 *   guess) is an error for accuracy and for its true class's recall (it counts in support), a prediction of
 *   no class (precision is unaffected), a count in the confusion matrix's `noAnswer` column, and is left out
 *   of ECE and the reliability bins, which have no confidence to judge; `unanswered` says how many.
 */
import { DatasetError } from '../errors.js';
import { argmax } from '../model/softmax.js';

export const DEFAULT_ECE_BINS = 15;

export interface ClassMetrics {
  precision: number;
  recall: number;
  f1: number;
  /** Number of samples whose true class is this one. */
  support: number;
}

export interface Metrics {
  accuracy: number;
  macroF1: number;
  /** Over the answered samples only (0 when none is). */
  ece: number;
  /** Samples scored, unanswered ones included. */
  n: number;
  classes: string[];
  perClass: Record<string, ClassMetrics>;
  /** confusionMatrix[true][predicted], both in `classes` order; answered samples only. */
  confusionMatrix: number[][];
  /** noAnswer[true]: samples of each true class left unanswered, the confusion matrix's extra column. */
  noAnswer: number[];
  /** Samples without an answer (Σ noAnswer): errors above, and left out of ECE. */
  unanswered: number;
}

export interface ScoringOptions {
  /**
   * unanswered[i] is true when the model gave no answer for sample i; row i of the probabilities is then
   * ignored and may hold anything (NaN included).
   */
  unanswered?: ArrayLike<boolean>;
}

export interface ReliabilityBin {
  lo: number;
  hi: number;
  count: number;
  /** Mean top-1 confidence in the bin (0 when the bin is empty). */
  confidence: number;
  /** Fraction of the bin's samples predicted correctly (0 when the bin is empty). */
  accuracy: number;
}

type Labels = Int32Array | ArrayLike<number>;

function checkInputs(trueIdx: Labels, probs: Float32Array, k: number, o: ScoringOptions): number {
  const n = trueIdx.length;
  if (!Number.isInteger(k) || k < 1) throw new DatasetError(`Need at least one class, got ${k}.`);
  if (n === 0) throw new DatasetError('No samples to evaluate: the label list is empty.');
  if (probs.length !== n * k) {
    throw new DatasetError(
      `Probabilities hold ${probs.length} values but ${n} samples × ${k} classes need ${n * k}.`,
    );
  }
  if (o.unanswered && o.unanswered.length !== n) {
    throw new DatasetError(`The unanswered flags cover ${o.unanswered.length} samples, not ${n}.`);
  }
  for (let i = 0; i < n; i++) {
    const t = trueIdx[i];
    if (!Number.isInteger(t) || t < 0 || t >= k) {
      throw new DatasetError(`Label ${t} of sample ${i} is not a class index in [0, ${k}).`);
    }
  }
  return n;
}

/** Arg-max (ties to the lower index) and the top-1 probability of row i. */
function top1(probs: Float32Array, i: number, k: number): [number, number] {
  const best = argmax(probs, i, k);
  return [best, probs[i * k + best]];
}

/** Bin of a confidence with (lo, hi] bins; 0 and anything below go to the first, above 1 to the last. */
function binOf(conf: number, nBins: number): number {
  const b = Math.ceil(conf * nBins) - 1;
  return b < 0 ? 0 : b >= nBins ? nBins - 1 : b;
}

/**
 * Per-bin top-1 confidence vs accuracy of the answered samples, for a reliability diagram and ECE.
 * `probs` is row-major n×k; every bin is returned, empty ones with count 0.
 */
export function reliabilityBins(
  trueIdx: Labels,
  probs: Float32Array,
  k: number,
  options: ScoringOptions & { bins?: number } = {},
): ReliabilityBin[] {
  const n = checkInputs(trueIdx, probs, k, options);
  const nBins = options.bins ?? DEFAULT_ECE_BINS;
  if (!Number.isInteger(nBins) || nBins < 1) throw new DatasetError(`Bin count must be ≥ 1, got ${nBins}.`);
  const count = new Float64Array(nBins);
  const confSum = new Float64Array(nBins);
  const correct = new Float64Array(nBins);
  for (let i = 0; i < n; i++) {
    if (options.unanswered?.[i]) continue;
    const [pred, conf] = top1(probs, i, k);
    const b = binOf(conf, nBins);
    count[b]++;
    confSum[b] += conf;
    if (pred === trueIdx[i]) correct[b]++;
  }
  const bins: ReliabilityBin[] = [];
  for (let b = 0; b < nBins; b++) {
    bins.push({
      lo: b / nBins,
      hi: (b + 1) / nBins,
      count: count[b],
      confidence: count[b] > 0 ? confSum[b] / count[b] : 0,
      accuracy: count[b] > 0 ? correct[b] / count[b] : 0,
    });
  }
  return bins;
}

/** Expected calibration error from reliability bins: Σ (count/n)·|accuracy − confidence|. */
export function expectedCalibrationError(bins: ReliabilityBin[]): number {
  let n = 0;
  let sum = 0;
  for (const b of bins) {
    n += b.count;
    sum += b.count * Math.abs(b.accuracy - b.confidence);
  }
  return n > 0 ? sum / n : 0;
}

/** All metrics of the module header from true class indices and row-major n×k probabilities. */
export function evaluatePredictions(
  trueIdx: Labels,
  probs: Float32Array,
  classes: string[],
  options: ScoringOptions = {},
): Metrics {
  const k = classes.length;
  if (new Set(classes).size !== k)
    throw new DatasetError(`Class names must be unique: ${classes.join(', ')}.`);
  const n = checkInputs(trueIdx, probs, k, options);

  const confusion: number[][] = classes.map(() => new Array<number>(k).fill(0));
  const noAnswer = new Array<number>(k).fill(0);
  let correct = 0;
  for (let i = 0; i < n; i++) {
    const t = trueIdx[i];
    if (options.unanswered?.[i]) {
      noAnswer[t]++;
      continue;
    }
    const [pred] = top1(probs, i, k);
    confusion[t][pred]++;
    if (pred === t) correct++;
  }

  const perClass: Record<string, ClassMetrics> = {};
  let f1Sum = 0;
  let f1Count = 0;
  for (let c = 0; c < k; c++) {
    const tp = confusion[c][c];
    let support = noAnswer[c];
    let predicted = 0;
    for (let o = 0; o < k; o++) {
      support += confusion[c][o];
      predicted += confusion[o][c];
    }
    const precision = predicted > 0 ? tp / predicted : 0;
    const recall = support > 0 ? tp / support : 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    perClass[classes[c]] = { precision, recall, f1, support };
    if (support > 0 || predicted > 0) {
      f1Sum += f1;
      f1Count++;
    }
  }

  return {
    accuracy: correct / n,
    macroF1: f1Count > 0 ? f1Sum / f1Count : 0,
    ece: expectedCalibrationError(reliabilityBins(trueIdx, probs, k, options)),
    n,
    classes: [...classes],
    perClass,
    confusionMatrix: confusion,
    noAnswer,
    unanswered: noAnswer.reduce((a, b) => a + b, 0),
  };
}

/** Column of the samples left unanswered (no white cell found), shown only when there are any. */
export const NO_ANSWER = 'no answer';

/**
 * The confusion matrix as shown to people (CLI and HTML report): a column per predicted class, plus a
 * "no answer" column when some samples were left unanswered, so each row sums to its class's support.
 */
export function confusionTable(m: Metrics): { columns: string[]; rows: number[][] } {
  const extra = m.unanswered > 0;
  return {
    columns: extra ? [...m.classes, NO_ANSWER] : m.classes,
    rows: m.confusionMatrix.map((row, i) => (extra ? [...row, m.noAnswer[i]] : row)),
  };
}
