/**
 * The classification head: multinomial logistic regression (softmax regression) on cached backbone
 * features, trained full-batch with L-BFGS in Float64.
 *
 * Objective, in the space of standardised features s = (x − mean) / std:
 *   L(W, b) = Σ_i w_i · CE(softmax(W s_i + b), y_i) / Σ_i w_i  +  (l2 / 2)·‖W‖²   (bias not penalised)
 * Because the data term is a weighted mean, a sample weight of 2 is the same as a duplicated row, and
 * `l2` does not need rescaling when n changes. Mean and std are weighted the same way (population std;
 * a constant feature gets std 1).
 *
 * Speed: features are never standardised in memory. Each pass folds the standardisation into the
 * weights (W/std, b − W·mean/std), works on the raw Float32 rows, and unfolds the gradient. The inner
 * loops take 4 rows × 4 classes at a time (16 accumulators), which keeps the weights in registers and
 * roughly doubles throughput over a row-at-a-time loop (V8 emits scalar SSE: this is near its limit).
 * Classes are padded to a multiple of 4. Large problems split the rows with one helper thread.
 */
import { Worker } from 'node:worker_threads';
import { DatasetError } from '../errors.js';
import { argmax } from '../model/softmax.js';
import { softmax } from './calibration.js';
import { lbfgs } from './lbfgs.js';

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

// ---------------------------------------------------------------------------------------------------
// Kernels. Weight layout: classes in chunks of 4, wk[(chunk·d + j)·4 + c].

/** z[r·kp + zo + c] = Σ_j x[row r, j] · wk[wo + 4j + c] for the 4 rows starting at offsets oa..oe. */
function forward4(
  x: Float32Array,
  oa: number,
  ob: number,
  oc: number,
  oe: number,
  d: number,
  wk: Float64Array,
  wo: number,
  z: Float64Array,
  zo: number,
  kp: number,
): void {
  // prettier-ignore
  let a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0,
    c0 = 0, c1 = 0, c2 = 0, c3 = 0, e0 = 0, e1 = 0, e2 = 0, e3 = 0;
  // prettier-ignore
  for (let j = 0, q = wo; j < d; j++, q += 4) {
    const xa = x[oa + j], xb = x[ob + j], xc = x[oc + j], xe = x[oe + j];
    const w0 = wk[q], w1 = wk[q + 1], w2 = wk[q + 2], w3 = wk[q + 3];
    a0 += xa * w0; a1 += xa * w1; a2 += xa * w2; a3 += xa * w3;
    b0 += xb * w0; b1 += xb * w1; b2 += xb * w2; b3 += xb * w3;
    c0 += xc * w0; c1 += xc * w1; c2 += xc * w2; c3 += xc * w3;
    e0 += xe * w0; e1 += xe * w1; e2 += xe * w2; e3 += xe * w3;
  }
  // prettier-ignore
  {
    z[zo] = a0; z[zo + 1] = a1; z[zo + 2] = a2; z[zo + 3] = a3; zo += kp;
    z[zo] = b0; z[zo + 1] = b1; z[zo + 2] = b2; z[zo + 3] = b3; zo += kp;
    z[zo] = c0; z[zo + 1] = c1; z[zo + 2] = c2; z[zo + 3] = c3; zo += kp;
    z[zo] = e0; z[zo + 1] = e1; z[zo + 2] = e2; z[zo + 3] = e3;
  }
}

/** gk[go + 4j + c] += Σ_r res[r·kp + ro + c] · x[row r, j] for the 4 rows starting at offsets oa..oe. */
function backward4(
  x: Float32Array,
  oa: number,
  ob: number,
  oc: number,
  oe: number,
  d: number,
  gk: Float64Array,
  go: number,
  res: Float64Array,
  ro: number,
  kp: number,
): void {
  // prettier-ignore
  const a0 = res[ro], a1 = res[ro + 1], a2 = res[ro + 2], a3 = res[ro + 3],
    b0 = res[ro + kp], b1 = res[ro + kp + 1], b2 = res[ro + kp + 2], b3 = res[ro + kp + 3],
    c0 = res[ro + 2 * kp], c1 = res[ro + 2 * kp + 1], c2 = res[ro + 2 * kp + 2], c3 = res[ro + 2 * kp + 3],
    e0 = res[ro + 3 * kp], e1 = res[ro + 3 * kp + 1], e2 = res[ro + 3 * kp + 2], e3 = res[ro + 3 * kp + 3];
  for (let j = 0, q = go; j < d; j++, q += 4) {
    // prettier-ignore
    const xa = x[oa + j], xb = x[ob + j], xc = x[oc + j], xe = x[oe + j];
    gk[q] += a0 * xa + b0 * xb + c0 * xc + e0 * xe;
    gk[q + 1] += a1 * xa + b1 * xb + c1 * xc + e1 * xe;
    gk[q + 2] += a2 * xa + b2 * xb + c2 * xc + e2 * xe;
    gk[q + 3] += a3 * xa + b3 * xb + c3 * xc + e3 * xe;
  }
}

/** Folded raw-space weights in kernel layout (wk, padded) and bias, from standardised-space ones. */
function foldToKernel(
  weight: ArrayLike<number>,
  bias: ArrayLike<number>,
  mean: Float32Array,
  std: Float32Array,
  d: number,
  k: number,
  kp: number,
  wk: Float64Array,
  bk: Float64Array,
): void {
  wk.fill(0);
  bk.fill(0);
  for (let c = 0; c < k; c++) {
    const base = (c >> 2) * d * 4 + (c & 3);
    let shift = 0;
    for (let j = 0; j < d; j++) {
      const w = weight[c * d + j] / std[j];
      wk[base + 4 * j] = w;
      shift += w * mean[j];
    }
    bk[c] = bias[c] - shift;
  }
}

/**
 * Loss and gradient contributions of rows [i0, i1): returns Σ rowW_i·CE_i, adds Σ r_ic·x_ij into gk
 * (kernel layout) and Σ r_ic into rsum, with r_ic = rowW_i·(p_ic − [c = y_i]). Row i of the problem is
 * row i − xRow0 of x. Self-contained apart from forward4/backward4, because its source also runs in the
 * helper thread. With y = null it only writes logits (bias included) into logitsOut (n×k).
 */
function passRows(
  x: Float32Array,
  xRow0: number,
  d: number,
  k: number,
  kp: number,
  y: Int32Array | null,
  rowW: Float64Array | null,
  wk: Float64Array,
  bk: Float64Array,
  i0: number,
  i1: number,
  gk: Float64Array,
  rsum: Float64Array,
  logitsOut: Float64Array | null,
): number {
  const z = new Float64Array(4 * kp);
  const res = new Float64Array(4 * kp);
  const chunks = kp >> 2;
  let data = 0;
  for (let i = i0; i < i1; i += 4) {
    const rows = Math.min(4, i1 - i);
    // Past the end of the range the block repeats its last row, with a zero residual.
    const oa = (i - xRow0) * d;
    const ob = (Math.min(i + 1, i1 - 1) - xRow0) * d;
    const oc = (Math.min(i + 2, i1 - 1) - xRow0) * d;
    const oe = (Math.min(i + 3, i1 - 1) - xRow0) * d;
    for (let ch = 0; ch < chunks; ch++) forward4(x, oa, ob, oc, oe, d, wk, ch * d * 4, z, ch * 4, kp);
    if (y === null || rowW === null) {
      for (let r = 0; r < rows; r++)
        for (let c = 0; c < k; c++) logitsOut![(i + r) * k + c] = z[r * kp + c] + bk[c];
      continue;
    }
    res.fill(0);
    for (let r = 0; r < rows; r++) {
      const zo = r * kp;
      let max = -Infinity;
      for (let c = 0; c < k; c++) {
        const v = z[zo + c] + bk[c];
        z[zo + c] = v;
        if (v > max) max = v;
      }
      let s = 0;
      for (let c = 0; c < k; c++) s += Math.exp(z[zo + c] - max);
      const w = rowW[i + r];
      const t = y[i + r];
      data += w * (Math.log(s) + max - z[zo + t]);
      for (let c = 0; c < k; c++) {
        const g = w * (Math.exp(z[zo + c] - max) / s - (c === t ? 1 : 0));
        res[zo + c] = g;
        rsum[c] += g;
      }
    }
    for (let ch = 0; ch < chunks; ch++) backward4(x, oa, ob, oc, oe, d, gk, ch * d * 4, res, ch * 4, kp);
  }
  return data;
}

// ---------------------------------------------------------------------------------------------------
// Helper thread. The main thread stays synchronous: it hands the helper the second half of the rows
// through shared memory, does the first half itself, then blocks on Atomics.wait until the helper is
// done. The helper runs the very same kernel functions (their source text), so there is no worker
// file to resolve or transpile.

const CTRL_READY = 0;
const CTRL_CMD = 1;
const CTRL_DONE = 2;
const CTRL_FAILED = 3;

interface HelperData {
  ctrl: SharedArrayBuffer;
  x: SharedArrayBuffer;
  xByteOffset: number;
  xLength: number;
  xRow0: number;
  d: number;
  k: number;
  kp: number;
  i0: number;
  i1: number;
  y: SharedArrayBuffer;
  rowW: SharedArrayBuffer;
  wk: SharedArrayBuffer;
  bk: SharedArrayBuffer;
  gk: SharedArrayBuffer;
  out: SharedArrayBuffer;
}

/** Body of the helper thread (runs from its source text: keep it free of imports and outer names). */
function helperMain(wd: HelperData): void {
  const ctrl = new Int32Array(wd.ctrl);
  const x = new Float32Array(wd.x, wd.xByteOffset, wd.xLength);
  const y = new Int32Array(wd.y);
  const rowW = new Float64Array(wd.rowW);
  const wk = new Float64Array(wd.wk);
  const bk = new Float64Array(wd.bk);
  const gk = new Float64Array(wd.gk);
  const out = new Float64Array(wd.out);
  const rsum = new Float64Array(wd.kp);
  Atomics.store(ctrl, 0, 1);
  Atomics.notify(ctrl, 0);
  let seen = 0;
  for (;;) {
    Atomics.wait(ctrl, 1, seen);
    const cmd = Atomics.load(ctrl, 1);
    if (cmd < 0) return;
    seen = cmd;
    try {
      gk.fill(0);
      rsum.fill(0);
      out[0] = passRows(x, wd.xRow0, wd.d, wd.k, wd.kp, y, rowW, wk, bk, wd.i0, wd.i1, gk, rsum, null);
      out.set(rsum, 1);
    } catch {
      Atomics.store(ctrl, 3, 1);
    }
    Atomics.store(ctrl, 2, cmd);
    Atomics.notify(ctrl, 2);
  }
}

class HelperThread {
  private seq = 0;
  private constructor(
    private readonly worker: Worker,
    private readonly ctrl: Int32Array,
    readonly gk: Float64Array,
    readonly out: Float64Array,
  ) {}

  /** Starts a helper for rows [i0, i1); null when it does not come up (the caller then works alone). */
  static start(
    x: Float32Array,
    n: number,
    d: number,
    k: number,
    kp: number,
    i0: number,
    y: Int32Array,
    rowW: Float64Array,
    wk: Float64Array,
    bk: Float64Array,
  ): HelperThread | null {
    const ctrlBuf = new SharedArrayBuffer(16);
    const ctrl = new Int32Array(ctrlBuf);
    let xs: Float32Array;
    let xRow0: number;
    if (x.buffer instanceof SharedArrayBuffer) {
      xs = x;
      xRow0 = 0;
    } else {
      // Only the helper's rows are copied.
      xs = new Float32Array(new SharedArrayBuffer((n - i0) * d * 4));
      xs.set(x.subarray(i0 * d, n * d));
      xRow0 = i0;
    }
    const gk = new Float64Array(new SharedArrayBuffer(wk.byteLength));
    const out = new Float64Array(new SharedArrayBuffer((1 + kp) * 8));
    const data: HelperData = {
      ctrl: ctrlBuf,
      x: xs.buffer as SharedArrayBuffer,
      xByteOffset: xs.byteOffset,
      xLength: xs.length,
      xRow0,
      d,
      k,
      kp,
      i0,
      i1: n,
      y: y.buffer as SharedArrayBuffer,
      rowW: rowW.buffer as SharedArrayBuffer,
      wk: wk.buffer as SharedArrayBuffer,
      bk: bk.buffer as SharedArrayBuffer,
      gk: gk.buffer as SharedArrayBuffer,
      out: out.buffer as SharedArrayBuffer,
    };
    const source = [
      "'use strict';",
      "const { workerData } = require('node:worker_threads');",
      forward4.toString(),
      backward4.toString(),
      passRows.toString(),
      `(${helperMain.toString()})(workerData);`,
    ].join('\n');
    let worker: Worker;
    try {
      worker = new Worker(source, { eval: true, workerData: data });
    } catch {
      return null;
    }
    worker.unref();
    // Booting takes tens of milliseconds; a helper that is not up in 20 s is not coming.
    if (Atomics.wait(ctrl, CTRL_READY, 0, 20_000) === 'timed-out' && Atomics.load(ctrl, CTRL_READY) === 0) {
      void worker.terminate();
      return null;
    }
    return new HelperThread(worker, ctrl, gk, out);
  }

  /** Tells the helper to process its rows with the current shared weights. */
  post(): void {
    this.seq++;
    Atomics.store(this.ctrl, CTRL_CMD, this.seq);
    Atomics.notify(this.ctrl, CTRL_CMD);
  }

  /**
   * Blocks until the helper has finished; false if it failed. It does the same work as the main thread,
   * so one still silent 2 minutes after the main thread is done has died (e.g. out of memory).
   */
  wait(): boolean {
    const deadline = performance.now() + 120_000;
    while (Atomics.load(this.ctrl, CTRL_DONE) !== this.seq) {
      if (performance.now() > deadline) return false;
      Atomics.wait(this.ctrl, CTRL_DONE, Atomics.load(this.ctrl, CTRL_DONE), 1000);
    }
    return Atomics.load(this.ctrl, CTRL_FAILED) === 0;
  }

  stop(): void {
    Atomics.store(this.ctrl, CTRL_CMD, -1);
    Atomics.notify(this.ctrl, CTRL_CMD);
    void this.worker.terminate();
  }
}

// ---------------------------------------------------------------------------------------------------
// Objective

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

function checkTrainingData(
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

// ---------------------------------------------------------------------------------------------------
// Public API

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

// ---------------------------------------------------------------------------------------------------
// Choosing l2

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
