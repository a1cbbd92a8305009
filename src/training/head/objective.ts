/**
 * The head's training objective, in the space of standardised features s = (x − mean) / std:
 *   L(W, b) = Σ_i w_i · CE(softmax(W s_i + b), y_i) / Σ_i w_i  +  (l2 / 2)·‖W‖²   (bias not penalised)
 * Because the data term is a weighted mean, a sample weight of 2 is the same as a duplicated row, and
 * `l2` does not need rescaling when n changes. Large problems split the rows with one helper thread.
 */
import { DatasetError } from '../../errors.js';
import { HelperThread } from './helper-thread.js';
import { foldToKernel, passRows } from './kernels.js';

export interface SoftmaxObjective {
  /** k·d + k: the k×d standardised-space weights (row-major), then the k biases. */
  dim: number;
  /** Threads actually computing (1 or 2). */
  readonly threads: number;
  /** Writes the gradient into `grad`, returns the loss of the module header. */
  evaluate(theta: Float64Array, grad: Float64Array): number;
  /** Stops the helper thread, if any. */
  close(): void;
}

/** Checks the training data; returns the total sample weight of each class. */
export function checkTrainingData(
  x: Float32Array,
  n: number,
  d: number,
  y: Int32Array,
  k: number,
  sw?: Float32Array,
) {
  if (!Number.isInteger(n) || n < 1) throw new DatasetError(`Need at least one training row, got n = ${n}.`);
  if (!Number.isInteger(d) || d < 1) throw new DatasetError(`Feature dimension must be ≥ 1, got ${d}.`);
  if (!Number.isInteger(k) || k < 2) throw new DatasetError(`Need at least 2 classes, got k = ${k}.`);
  if (x.length !== n * d)
    throw new DatasetError(`Features hold ${x.length} values, but ${n} rows × ${d} need ${n * d}.`);
  if (y.length !== n) throw new DatasetError(`${y.length} labels for ${n} feature rows.`);
  if (sw && sw.length !== n) throw new DatasetError(`${sw.length} sample weights for ${n} feature rows.`);
  const classWeight = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    const t = y[i];
    if (t < 0 || t >= k) throw new DatasetError(`Label ${t} of row ${i} is not a class index in [0, ${k}).`);
    const w = sw ? sw[i] : 1;
    if (!(w >= 0) || !Number.isFinite(w))
      throw new DatasetError(`Sample weight ${w} of row ${i} is not a finite number ≥ 0.`);
    classWeight[t] += w;
  }
  for (let c = 0; c < k; c++) {
    if (!(classWeight[c] > 0)) {
      throw new DatasetError(
        `Class ${c} has no training rows (or only rows of weight 0): the head cannot learn it. ` +
          'Drop the class or add examples of it.',
      );
    }
  }
  return classWeight;
}

/** Below this many feature values a second thread costs more than it saves. */
const MIN_PARALLEL_VALUES = 1 << 22;

function sharedCopy<T extends Int32Array | Float64Array>(a: T): T {
  const Ctor = a.constructor as new (b: SharedArrayBuffer) => T;
  const out = new Ctor(new SharedArrayBuffer(a.byteLength));
  out.set(a as never);
  return out;
}

/**
 * The training objective over standardised-space parameters (layout in `SoftmaxObjective.dim`).
 * Exported for gradient checks and diagnostics; `trainSoftmaxHead` is the normal entry point.
 * `threads`: 1 or 2 (default 2 for large problems, 1 below ~4M feature values).
 */
export function createSoftmaxObjective(
  x: Float32Array,
  n: number,
  d: number,
  y: Int32Array,
  k: number,
  opts: { l2: number; sampleWeights?: Float32Array; mean: Float32Array; std: Float32Array; threads?: number },
): SoftmaxObjective {
  checkTrainingData(x, n, d, y, k, opts.sampleWeights);
  const { l2, mean, std } = opts;
  if (!(l2 >= 0) || !Number.isFinite(l2))
    throw new DatasetError(`l2 must be a finite number ≥ 0, got ${l2}.`);
  if (mean.length !== d || std.length !== d) throw new DatasetError(`Mean and std must hold ${d} values.`);
  const sw = opts.sampleWeights;
  let wsum = 0;
  for (let i = 0; i < n; i++) wsum += sw ? sw[i] : 1;
  const rowWLocal = new Float64Array(n);
  for (let i = 0; i < n; i++) rowWLocal[i] = (sw ? sw[i] : 1) / wsum;

  const kp = (k + 3) & ~3;
  const kd = k * d;
  const threads = Math.min(
    2,
    Math.max(1, Math.floor(opts.threads ?? (n * d >= MIN_PARALLEL_VALUES ? 2 : 1))),
  );
  // The main thread takes the first `split` rows (a multiple of 4), the helper the rest.
  const split = threads === 2 && n >= 8 ? (Math.ceil(n / 2) + 3) & ~3 : n;
  let helper: HelperThread | null = null;
  let wk = new Float64Array(kp * d);
  let bk = new Float64Array(kp);
  let yUse = y;
  let rowW = rowWLocal;
  if (split < n) {
    wk = sharedCopy(wk);
    bk = sharedCopy(bk);
    yUse = sharedCopy(y);
    rowW = sharedCopy(rowWLocal);
    helper = HelperThread.start(x, n, d, k, kp, split, yUse, rowW, wk, bk);
  }
  const gk = new Float64Array(kp * d);
  const rsum = new Float64Array(kp);

  function evaluate(theta: Float64Array, grad: Float64Array): number {
    if (theta.length !== kd + k || grad.length !== kd + k) {
      throw new DatasetError(`Parameter and gradient vectors must hold ${kd + k} values.`);
    }
    foldToKernel(theta, theta.subarray(kd), mean, std, d, k, kp, wk, bk);
    gk.fill(0);
    rsum.fill(0);
    helper?.post();
    let data = passRows(x, 0, d, k, kp, yUse, rowW, wk, bk, 0, helper ? split : n, gk, rsum, null);
    if (helper) {
      if (helper.wait()) {
        data += helper.out[0];
        for (let c = 0; c < kp; c++) rsum[c] += helper.out[1 + c];
        const hg = helper.gk;
        for (let q = 0; q < gk.length; q++) gk[q] += hg[q];
      } else {
        // The helper failed: do its rows here, and from now on work alone.
        helper.stop();
        helper = null;
        data += passRows(x, 0, d, k, kp, yUse, rowW, wk, bk, split, n, gk, rsum, null);
      }
    }
    // Unfold: ∂/∂W_std[c,j] = (Σ_i r_ic x_ij − mean_j Σ_i r_ic) / std_j, plus the penalty.
    let penalty = 0;
    for (let c = 0; c < k; c++) {
      const base = (c >> 2) * d * 4 + (c & 3);
      for (let j = 0; j < d; j++) {
        const w = theta[c * d + j];
        penalty += w * w;
        grad[c * d + j] = (gk[base + 4 * j] - mean[j] * rsum[c]) / std[j] + l2 * w;
      }
      grad[kd + c] = rsum[c];
    }
    return data + 0.5 * l2 * penalty;
  }

  return {
    dim: kd + k,
    get threads() {
      return helper ? 2 : 1;
    },
    evaluate,
    close() {
      helper?.stop();
      helper = null;
    },
  };
}
