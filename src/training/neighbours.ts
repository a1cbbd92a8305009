/**
 * Fits the nearest-cells check (model/neighbours.ts): the features' main directions (PCA of the standardised
 * training rows), a few hundred training cells per class and lab stored on them at unit length, and one
 * threshold per training lab, the given quantile of that lab's validation cells' score, chosen as the block
 * heads' are (training/lab-thresholds.ts).
 */
import { DatasetError } from '../errors.js';
import { createRng, shuffled } from '../imaging/random.js';
import { neighbourDistance, projectUnit, type NeighbourReference } from '../model/neighbours.js';
import { labThresholds, type LabelledValidation } from './lab-thresholds.js';
import { topEigen } from './linalg.js';

/**
 * Fixed before the product measured it, from the leave-one-class-out study on cached features
 * (scripts/loco-study/scores3.py, BENCHMARKS.md): 64 directions and a few hundred cells per class and lab
 * flagged as many erythroblasts as every feature and every training cell did, and the 5th neighbour was as good
 * as the 10th; each lab's 97.5th percentile, so that with the block heads (95th) and the Mahalanobis guard
 * (99.5th) the cell check flags about the share of known cells it flagged before (scores5.py).
 */
export const NEIGHBOUR_DEFAULTS = {
  dims: 64,
  perClassAndLab: 300,
  k: 5,
  quantile: 0.975,
  covarianceRows: 3000,
};

export function fitNeighbours(
  train: { x: Float32Array; n: number; label: ArrayLike<number>; source: ArrayLike<number> },
  val: LabelledValidation,
  D: number,
  cellScale: number,
  o: Partial<typeof NEIGHBOUR_DEFAULTS> & { seed?: number } = {},
): {
  reference: NeighbourReference;
  /** 1 for each validation row whose score is over its lab's threshold. */
  flagged: Uint8Array;
} {
  const opts = { ...NEIGHBOUR_DEFAULTS, ...o };
  if (train.n <= opts.k) throw new DatasetError('Too few training cells for the nearest-cells check.');
  const rng = createRng(opts.seed ?? 7);
  const groups = new Map<string, number[]>();
  for (let r = 0; r < train.n; r++) {
    const key = `${train.label[r]}|${train.source[r]}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(r);
  }
  const draw = (total: number) => {
    const per = Math.max(1, Math.floor(total / groups.size));
    return [...groups.values()].flatMap((rows) => shuffled(rows, rng).slice(0, per));
  };

  const mean = new Float64Array(D);
  const sq = new Float64Array(D);
  for (let r = 0; r < train.n; r++)
    for (let j = 0; j < D; j++) {
      const v = train.x[r * D + j];
      mean[j] += v / train.n;
      sq[j] += (v * v) / train.n;
    }
  const std = Float64Array.from(mean, (m, j) => Math.sqrt(Math.max(sq[j] - m * m, 0)) + 1e-6);

  // Covariance of the standardised rows from an even draw over classes and labs (upper triangle, mirrored).
  const rows = draw(opts.covarianceRows);
  const cov = new Float64Array(D * D);
  const z = new Float64Array(D);
  for (const r of rows) {
    for (let j = 0; j < D; j++) z[j] = (train.x[r * D + j] - mean[j]) / std[j];
    for (let a = 0; a < D; a++) {
      const za = z[a] / rows.length;
      if (za === 0) continue;
      const base = a * D;
      for (let b = a; b < D; b++) cov[base + b] += za * z[b];
    }
  }
  for (let a = 0; a < D; a++) for (let b = a + 1; b < D; b++) cov[b * D + a] = cov[a * D + b];
  const dims = Math.min(opts.dims, D);
  const eig = topEigen(cov, D, dims, { seed: opts.seed ?? 7 });

  // Standardisation folded into the projection: ((x − μ)/σ)·V = x·(V/σ) − (μ/σ)·V.
  const weight = new Float32Array(dims * D);
  const bias = new Float32Array(dims);
  for (let i = 0; i < dims; i++) {
    let b = 0;
    for (let j = 0; j < D; j++) {
      const v = eig.vectors[j * dims + i] / std[j];
      weight[i * D + j] = v;
      b -= mean[j] * v;
    }
    bias[i] = b;
  }
  const kept = draw(opts.perClassAndLab * groups.size);
  const stored = new Float32Array(kept.length * dims);
  kept.forEach((r, i) => stored.set(projectUnit({ weight, bias }, train.x, D, r), i * dims));

  const reference = { weight, bias, rows: stored, k: opts.k, cellScale, thresholds: new Float32Array(0) };
  const scores = Float64Array.from({ length: val.n }, (_, r) => neighbourDistance(reference, val.x, D, r));
  const { thresholds, flagged } = labThresholds(
    scores,
    val,
    opts.quantile,
    'Every validation cell has stored twins: nothing to fit.',
  );
  reference.thresholds = thresholds;
  return { reference, flagged };
}
