/**
 * Temperature scaling (Guo et al., 2017): one scalar T divides every logit so that softmax(z / T) is
 * calibrated on held-out data. The arg-max, hence accuracy, never changes.
 */
import { DatasetError } from '../errors.js';
import { softmaxRows } from '../model/softmax.js';

export const MIN_TEMPERATURE = 0.05;
export const MAX_TEMPERATURE = 20;

type Labels = Int32Array | ArrayLike<number>;

function rowCount(logits: Float32Array | Float64Array, k: number): number {
  if (!Number.isInteger(k) || k < 1) throw new DatasetError(`Need at least one class, got ${k}.`);
  if (logits.length % k !== 0) {
    throw new DatasetError(`${logits.length} logits do not split into rows of ${k} classes.`);
  }
  return logits.length / k;
}

function checkLabels(labels: Labels, n: number, k: number): void {
  if (labels.length !== n) throw new DatasetError(`${labels.length} labels for ${n} rows of logits.`);
  for (let i = 0; i < n; i++) {
    const t = labels[i];
    if (!Number.isInteger(t) || t < 0 || t >= k) {
      throw new DatasetError(`Label ${t} of sample ${i} is not a class index in [0, ${k}).`);
    }
  }
}

/** Row-wise softmax of row-major n×k logits divided by T (checked), as the model computes it. */
export function softmax(logits: Float32Array | Float64Array, k: number, T = 1): Float32Array {
  rowCount(logits, k);
  if (!(T > 0) || !Number.isFinite(T))
    throw new DatasetError(`Temperature must be a positive number, got ${T}.`);
  return softmaxRows(logits, k, T);
}

/**
 * NLL at inverse temperature b and its first two derivatives in b. With q = softmax(b·z):
 * d/db = mean(E_q[z] − z_y), d²/db² = mean(Var_q[z]) ≥ 0, so the NLL is convex in b.
 */
function nllAndDerivatives(
  logits: Float32Array | Float64Array,
  labels: Labels,
  n: number,
  k: number,
  b: number,
): { nll: number; grad: number; hess: number } {
  let nll = 0;
  let grad = 0;
  let hess = 0;
  for (let i = 0; i < n; i++) {
    const o = i * k;
    let max = -Infinity;
    for (let c = 0; c < k; c++) if (logits[o + c] > max) max = logits[o + c];
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    for (let c = 0; c < k; c++) {
      // Centre on the max so exp() stays in range and E[z], Var[z] lose no precision.
      const z = logits[o + c] - max;
      const e = Math.exp(b * z);
      s0 += e;
      s1 += e * z;
      s2 += e * z * z;
    }
    const zy = logits[o + labels[i]] - max;
    const mean = s1 / s0;
    nll += Math.log(s0) - b * zy;
    grad += mean - zy;
    hess += Math.max(0, s2 / s0 - mean * mean);
  }
  return { nll: nll / n, grad: grad / n, hess: hess / n };
}

/**
 * The temperature T in [0.05, 20] minimising the mean NLL of softmax(logits / T) on (logits, labels).
 * Newton's method on b = 1/T (where the NLL is convex), kept inside a shrinking bracket of the
 * derivative's sign change so it cannot diverge. A bound is returned when the optimum lies beyond it
 * (e.g. perfectly separated logits push T to 0.05).
 */
export function fitTemperature(logits: Float32Array | Float64Array, labels: Labels, k: number): number {
  const n = rowCount(logits, k);
  checkLabels(labels, n, k);
  if (n === 0) throw new DatasetError('No samples: cannot fit a temperature.');
  let lo = 1 / MAX_TEMPERATURE;
  let hi = 1 / MIN_TEMPERATURE;
  if (nllAndDerivatives(logits, labels, n, k, lo).grad >= 0) return MAX_TEMPERATURE;
  if (nllAndDerivatives(logits, labels, n, k, hi).grad <= 0) return MIN_TEMPERATURE;

  let b = 1;
  for (let iter = 0; iter < 100; iter++) {
    const { grad, hess } = nllAndDerivatives(logits, labels, n, k, b);
    if (grad > 0) hi = b;
    else lo = b;
    if (Math.abs(grad) < 1e-12 || hi - lo < 1e-12 * b) break;
    let next = hess > 0 ? b - grad / hess : NaN;
    if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
    if (Math.abs(next - b) < 1e-12 * b) {
      b = next;
      break;
    }
    b = next;
  }
  return 1 / b;
}
