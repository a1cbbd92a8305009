/**
 * The head's unrolled kernels (deliberately repetitive: this is where the time goes). Weight layout: classes
 * in chunks of 4, wk[(chunk·d + j)·4 + c].
 *
 * Features are never standardised in memory. Each pass folds the standardisation into the weights
 * (W/std, b − W·mean/std), works on the raw Float32 rows, and unfolds the gradient. The inner loops take
 * 4 rows × 4 classes at a time (16 accumulators), which keeps the weights in registers and roughly doubles
 * throughput over a row-at-a-time loop (V8 emits scalar SSE: this is near its limit). Classes are padded to
 * a multiple of 4.
 *
 * forward4, backward4 and passRows also run in the helper thread from their source text: keep them free of
 * imports and of any outer name but each other.
 */

/** z[r·kp + zo + c] = Σ_j x[row r, j] · wk[wo + 4j + c] for the 4 rows starting at offsets oa..oe. */
export function forward4(
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
export function backward4(
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
export function foldToKernel(
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
export function passRows(
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
