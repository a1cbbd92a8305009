/**
 * Fitting the head: softmax regression on standardised features (weighted mean and population std; a
 * constant feature gets std 1), full-batch L-BFGS in Float64 from the class priors or a warm start; and
 * applying it (logits, or the same head folded onto raw features).
 */
import { DatasetError } from '../../errors.js';
import { lbfgs } from '../lbfgs.js';
import { foldToKernel, passRows } from './kernels.js';
import { checkTrainingData, createSoftmaxObjective } from './objective.js';

export interface LinearHead {
  d: number;
  k: number;
  mean: Float32Array;
  std: Float32Array;
  /** k×d row-major, applied to STANDARDISED features. */
  weight: Float32Array;
  bias: Float32Array;
}

export interface TrainHeadOptions {
  /** L2 penalty on the weights (standardised space), see the module header. */
  l2: number;
  /** Per-row weights ≥ 0 (class × source balancing, combined by the caller). Default all 1. */
  sampleWeights?: Float32Array;
  /** Maximum L-BFGS iterations. Default 300. */
  maxIter?: number;
  /** Stop when the largest absolute gradient entry is at most this. Default 1e-4 (as sklearn). */
  tol?: number;
  /** After each L-BFGS iteration: the objective and its largest absolute gradient entry. */
  onProgress?(iter: number, loss: number, gradMax: number): void;
  /** 1 or 2 threads; default 2 when n·d ≥ ~4M, else 1. */
  threads?: number;
  /** Warm start (same d and k; standardised-space weights, e.g. from a head trained with another l2). */
  init?: { weight: Float32Array | Float64Array; bias: Float32Array | Float64Array };
}

export interface HeadFit {
  head: LinearHead;
  /** Final value of the objective (data term + penalty). */
  loss: number;
  iterations: number;
  evaluations: number;
  converged: boolean;
  reason: string;
  threads: number;
  seconds: number;
}

/** Weighted mean and population std per feature, rounded to Float32 (what the head stores). */
function standardisation(x: Float32Array, n: number, d: number, sw?: Float32Array) {
  const sum = new Float64Array(d);
  let wsum = 0;
  for (let i = 0; i < n; i++) {
    const w = sw ? sw[i] : 1;
    if (w === 0) continue;
    wsum += w;
    const o = i * d;
    for (let j = 0; j < d; j++) sum[j] += w * x[o + j];
  }
  const mean = new Float64Array(d);
  for (let j = 0; j < d; j++) mean[j] = sum[j] / wsum;
  const sq = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    const w = sw ? sw[i] : 1;
    if (w === 0) continue;
    const o = i * d;
    for (let j = 0; j < d; j++) {
      const v = x[o + j] - mean[j];
      sq[j] += w * v * v;
    }
  }
  const meanF = new Float32Array(d);
  const stdF = new Float32Array(d);
  for (let j = 0; j < d; j++) {
    if (!Number.isFinite(mean[j]) || !Number.isFinite(sq[j])) {
      throw new DatasetError(`Feature ${j} holds NaN or infinite values: the feature cache is damaged.`);
    }
    const s = Math.sqrt(sq[j] / wsum);
    meanF[j] = mean[j];
    // A feature that never varies (to Float32 precision) carries nothing; std 1 keeps it harmless.
    stdF[j] = s > 1e-6 * Math.abs(mean[j]) && s > 1e-30 ? s : 1;
  }
  return { mean: meanF, std: stdF };
}

export const DEFAULT_MAX_ITER = 300;
export const DEFAULT_TOL = 1e-4;

/** Trains the head and returns it with how the optimisation went. */
export function fitSoftmaxHead(
  x: Float32Array,
  n: number,
  d: number,
  y: Int32Array,
  k: number,
  opts: TrainHeadOptions,
): HeadFit {
  const started = performance.now();
  const classWeight = checkTrainingData(x, n, d, y, k, opts.sampleWeights);
  const { mean, std } = standardisation(x, n, d, opts.sampleWeights);
  const objective = createSoftmaxObjective(x, n, d, y, k, { ...opts, mean, std });
  const theta = new Float64Array(objective.dim);
  if (opts.init) {
    if (opts.init.weight.length !== k * d || opts.init.bias.length !== k) {
      throw new DatasetError(`Warm-start head has the wrong shape for ${k} classes × ${d} features.`);
    }
    theta.set(opts.init.weight);
    theta.set(opts.init.bias, k * d);
  } else {
    // Start from the class priors: the best constant model, a cheap head start.
    let total = 0;
    for (let c = 0; c < k; c++) total += classWeight[c];
    for (let c = 0; c < k; c++) theta[k * d + c] = Math.log(classWeight[c] / total);
  }
  let result: ReturnType<typeof lbfgs>;
  let threads: number;
  try {
    result = lbfgs(objective.evaluate, theta, {
      maxIter: opts.maxIter ?? DEFAULT_MAX_ITER,
      gradTol: opts.tol ?? DEFAULT_TOL,
      onIteration: (iter, f, gmax) => opts.onProgress?.(iter, f, gmax),
    });
    threads = objective.threads;
  } finally {
    objective.close();
  }
  const head: LinearHead = {
    d,
    k,
    mean,
    std,
    weight: Float32Array.from(result.x.subarray(0, k * d)),
    bias: Float32Array.from(result.x.subarray(k * d)),
  };
  return {
    head,
    loss: result.f,
    iterations: result.iterations,
    evaluations: result.evaluations,
    converged: result.reason !== 'max-iter',
    reason: result.reason,
    threads,
    seconds: (performance.now() - started) / 1000,
  };
}

/** Trains a softmax-regression head on row-major n×d features with labels in [0, k). */
export function trainSoftmaxHead(
  x: Float32Array,
  n: number,
  d: number,
  y: Int32Array,
  k: number,
  opts: TrainHeadOptions,
): LinearHead {
  return fitSoftmaxHead(x, n, d, y, k, opts).head;
}

function checkHead(head: LinearHead): void {
  const { d, k } = head;
  if (
    head.mean.length !== d ||
    head.std.length !== d ||
    head.weight.length !== k * d ||
    head.bias.length !== k
  ) {
    throw new DatasetError(`Head arrays do not match its shape (${k} classes × ${d} features).`);
  }
}

/** Logits (row-major n×k) of raw features x under the head. */
export function headLogits(head: LinearHead, x: Float32Array, n: number): Float32Array {
  checkHead(head);
  const { d, k } = head;
  if (x.length !== n * d)
    throw new DatasetError(`Features hold ${x.length} values, but ${n} rows × ${d} need ${n * d}.`);
  if (n === 0) return new Float32Array(0);
  const kp = (k + 3) & ~3;
  const wk = new Float64Array(kp * d);
  const bk = new Float64Array(kp);
  foldToKernel(head.weight, head.bias, head.mean, head.std, d, k, kp, wk, bk);
  const out = new Float64Array(n * k);
  passRows(x, 0, d, k, kp, null, null, wk, bk, 0, n, new Float64Array(0), new Float64Array(0), out);
  return Float32Array.from(out);
}

/**
 * The same head as weights on RAW features: logits = x · weightᵀ + bias, with weight k×d row-major,
 * i.e. one Gemm(x, weight, bias, transB = 1) in the ONNX graph.
 */
export function foldStandardisation(head: LinearHead): { weight: Float32Array; bias: Float32Array } {
  checkHead(head);
  const { d, k } = head;
  const weight = new Float32Array(k * d);
  const bias = new Float32Array(k);
  for (let c = 0; c < k; c++) {
    let shift = 0;
    for (let j = 0; j < d; j++) {
      const w = head.weight[c * d + j] / head.std[j];
      weight[c * d + j] = w;
      shift += w * head.mean[j];
    }
    bias[c] = head.bias[c] - shift;
  }
  return { weight, bias };
}

/**
 * Logits (rows.length×k) of the given rows of raw n×d features under a folded head (foldStandardisation's
 * weight, k×d, and bias): the model file's Gemm, row by row. All n rows when `rows` is omitted.
 */
export function foldedLogits(
  weight: ArrayLike<number>,
  bias: ArrayLike<number>,
  x: Float32Array,
  d: number,
  rows: ArrayLike<number> = Array.from({ length: x.length / d }, (_, r) => r),
): Float32Array {
  const k = bias.length;
  const logits = new Float32Array(rows.length * k);
  for (let j = 0; j < rows.length; j++) {
    const r = rows[j];
    for (let c = 0; c < k; c++) {
      let s = bias[c];
      for (let i = 0; i < d; i++) s += weight[c * d + i] * x[r * d + i];
      logits[j * k + c] = s;
    }
  }
  return logits;
}
