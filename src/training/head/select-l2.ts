/** Choosing the head's l2 on validation data: one warm-started fit per candidate, scored on held-out rows. */
import { DatasetError } from '../../errors.js';
import { argmax } from '../../model/softmax.js';
import { softmax } from '../calibration.js';
import { fitSoftmaxHead, headLogits, type LinearHead } from './fit.js';

export interface HeadData {
  x: Float32Array;
  n: number;
  y: Int32Array;
  sampleWeights?: Float32Array;
}

export interface L2Score {
  l2: number;
  /** Validation NLL and accuracy, weighted by the validation sample weights when given. */
  nll: number;
  accuracy: number;
  trainLoss: number;
  iterations: number;
  seconds: number;
}

export interface SelectL2Options {
  /** Candidates; default 1e-1, 1e-2, 1e-3, 1e-4, 1e-5. */
  grid?: number[];
  /** What to pick by; default 'nll' (lower is better). Ties go to the larger l2. */
  criterion?: 'nll' | 'accuracy';
  maxIter?: number;
  tol?: number;
  onProgress?(l2: number, iter: number, loss: number): void;
}

export const DEFAULT_L2_GRID = [1e-1, 1e-2, 1e-3, 1e-4, 1e-5];

/** Validation NLL and accuracy of a head, weighted by `data.sampleWeights` when given. */
export function scoreHead(head: LinearHead, data: HeadData): { nll: number; accuracy: number } {
  const { k } = head;
  if (data.y.length !== data.n) throw new DatasetError(`${data.y.length} labels for ${data.n} feature rows.`);
  const p = softmax(headLogits(head, data.x, data.n), k);
  let nll = 0;
  let correct = 0;
  let wsum = 0;
  for (let i = 0; i < data.n; i++) {
    const w = data.sampleWeights ? data.sampleWeights[i] : 1;
    const t = data.y[i];
    if (t < 0 || t >= k) throw new DatasetError(`Label ${t} of row ${i} is not a class index in [0, ${k}).`);
    nll -= w * Math.log(Math.max(p[i * k + t], 1e-30));
    if (argmax(p, i, k) === t) correct += w;
    wsum += w;
  }
  if (!(wsum > 0)) throw new DatasetError('Validation set is empty (or all its weights are 0).');
  return { nll: nll / wsum, accuracy: correct / wsum };
}

/**
 * Trains one head per l2 (largest first, each warm-started from the previous, which is much faster
 * than starting cold) and keeps the best on the validation set.
 */
export function selectL2(
  train: HeadData,
  val: HeadData,
  d: number,
  k: number,
  opts: SelectL2Options = {},
): { l2: number; head: LinearHead; table: L2Score[] } {
  const grid = [...(opts.grid ?? DEFAULT_L2_GRID)].sort((a, b) => b - a);
  if (grid.length === 0) throw new DatasetError('The l2 grid is empty.');
  const criterion = opts.criterion ?? 'nll';
  const table: L2Score[] = [];
  let best: { l2: number; head: LinearHead; score: number } | null = null;
  let prev: LinearHead | undefined;
  for (const l2 of grid) {
    const fit = fitSoftmaxHead(train.x, train.n, d, train.y, k, {
      l2,
      sampleWeights: train.sampleWeights,
      maxIter: opts.maxIter,
      tol: opts.tol,
      init: prev ? { weight: prev.weight, bias: prev.bias } : undefined,
      onProgress: (iter, loss) => opts.onProgress?.(l2, iter, loss),
    });
    prev = fit.head;
    const s = scoreHead(fit.head, val);
    table.push({ l2, ...s, trainLoss: fit.loss, iterations: fit.iterations, seconds: fit.seconds });
    const score = criterion === 'nll' ? s.nll : -s.accuracy;
    if (!best || score < best.score) best = { l2, head: fit.head, score };
  }
  return { l2: best!.l2, head: best!.head, table };
}
