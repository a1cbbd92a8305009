/** Row-wise softmax of row-major n×k logits divided by T; max-subtracted so large logits cannot overflow. */
export function softmaxRows(logits: ArrayLike<number>, k: number, T = 1): Float32Array {
  const n = Math.floor(logits.length / k);
  const out = new Float32Array(n * k);
  const inv = 1 / T;
  for (let i = 0; i < n; i++) {
    const o = i * k;
    let max = -Infinity;
    for (let c = 0; c < k; c++) if (logits[o + c] > max) max = logits[o + c];
    let sum = 0;
    for (let c = 0; c < k; c++) sum += Math.exp((logits[o + c] - max) * inv);
    for (let c = 0; c < k; c++) out[o + c] = Math.exp((logits[o + c] - max) * inv) / sum;
  }
  return out;
}

/** The class with the largest value in row `i` of row-major n×k scores (ties go to the lower index). */
export function argmax(scores: ArrayLike<number>, i: number, k: number): number {
  const o = i * k;
  let best = 0;
  for (let c = 1; c < k; c++) if (scores[o + c] > scores[o + best]) best = c;
  return best;
}
