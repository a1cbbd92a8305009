import { inferShapes, specParams, type ConvLayer, type NetSpec } from './spec.js';

/**
 * A float64 forward pass of a spec written in plain TypeScript: the yardstick the ONNX graphs are checked
 * against (finite differences need float64). Slow; meant for small networks or a few late layers.
 */
export interface ReferenceOptions {
  /** Weights by parameter name; the spec's own (as float64) for any not given. */
  weights?: Map<string, Float64Array>;
  /** Tensors already known (e.g. from an earlier run); layers producing them are skipped. */
  known?: Map<string, Float64Array>;
  /** Pooled feature vectors [n, C] already known, by feature layer name. */
  pooled?: Map<string, Float64Array>;
}

export interface ReferenceResult {
  /** Every tensor computed or given, [n, C, H, W] row-major. */
  tensors: Map<string, Float64Array>;
  features: Float64Array;
  logits: Float64Array;
}

export function referenceForward(
  spec: NetSpec,
  input: Float64Array,
  n: number,
  o: ReferenceOptions = {},
): ReferenceResult {
  const shapes = inferShapes(spec);
  const weights = new Map(o.weights);
  for (const p of specParams(spec)) if (!weights.has(p.name)) weights.set(p.name, Float64Array.from(p.data));
  const tensors = new Map(o.known);
  tensors.set(spec.input.name, input);
  const layers = new Map(spec.layers.map((l) => [l.name, l]));
  // On demand, so layers hidden behind known tensors are never computed.
  const get = (name: string): Float64Array => {
    const done = tensors.get(name);
    if (done) return done;
    const l = layers.get(name)!;
    let y: Float64Array;
    if (l.kind === 'add') {
      const a = get(l.inputs[0]);
      const b = get(l.inputs[1]);
      y = a.map((v, i) => v + b[i]);
    } else {
      const xs =
        l.input === spec.input.name
          ? [spec.input.channels, spec.input.height, spec.input.width]
          : shapes.get(l.input)!;
      y = conv(
        get(l.input),
        n,
        xs,
        l,
        weights.get(`${l.name}/W`)!,
        weights.get(`${l.name}/B`)!,
        shapes.get(l.name)!,
      );
      if (l.relu6) for (let i = 0; i < y.length; i++) y[i] = Math.min(6, Math.max(0, y[i]));
    }
    tensors.set(name, y);
    return y;
  };
  for (const f of spec.features) if (!o.pooled?.has(f)) get(f);
  const d = spec.features.reduce((a, f) => a + shapes.get(f)![0], 0);
  const features = new Float64Array(n * d);
  let offset = 0;
  for (const f of spec.features) {
    const [c, h, w] = shapes.get(f)!;
    const given = o.pooled?.get(f);
    if (given) {
      for (let b = 0; b < n; b++)
        for (let ch = 0; ch < c; ch++) features[b * d + offset + ch] = given[b * c + ch];
      offset += c;
      continue;
    }
    const t = tensors.get(f)!;
    for (let b = 0; b < n; b++)
      for (let ch = 0; ch < c; ch++) {
        let s = 0;
        const base = (b * c + ch) * h * w;
        for (let i = 0; i < h * w; i++) s += t[base + i];
        features[b * d + offset + ch] = s / (h * w);
      }
    offset += c;
  }
  const k = spec.head.classes;
  const hw = weights.get('head/W')!;
  const hb = weights.get('head/B')!;
  const logits = new Float64Array(n * k);
  for (let b = 0; b < n; b++)
    for (let c = 0; c < k; c++) {
      let s = hb[c];
      for (let j = 0; j < d; j++) s += features[b * d + j] * hw[c * d + j];
      logits[b * k + c] = s;
    }
  return { tensors, features, logits };
}

function conv(
  x: Float64Array,
  n: number,
  [ci, h, w]: number[],
  l: ConvLayer,
  wt: Float64Array,
  bias: Float64Array,
  [co, ho, wo]: number[],
): Float64Array {
  const [kh, kw] = l.kernel;
  const [sh, sw] = l.stride;
  const [pt, pl] = l.pads;
  const cig = ci / l.group;
  const cog = co / l.group;
  const y = new Float64Array(n * co * ho * wo);
  if (kh === 1 && kw === 1 && l.group === 1 && sh === 1 && sw === 1 && l.pads.every((p) => p === 0)) {
    // Pointwise: the inner loop runs over contiguous pixels (most of MobileNetV2's work).
    const hw = h * w;
    for (let b = 0; b < n; b++)
      for (let oc = 0; oc < co; oc++) {
        const out = y.subarray((b * co + oc) * hw, (b * co + oc + 1) * hw);
        out.fill(bias[oc]);
        for (let ic = 0; ic < ci; ic++) {
          const wv = wt[oc * ci + ic];
          const base = (b * ci + ic) * hw;
          for (let p = 0; p < hw; p++) out[p] += wv * x[base + p];
        }
      }
    return y;
  }
  for (let b = 0; b < n; b++)
    for (let oc = 0; oc < co; oc++) {
      const g0 = Math.floor(oc / cog) * cig;
      for (let oy = 0; oy < ho; oy++)
        for (let ox = 0; ox < wo; ox++) {
          let s = bias[oc];
          for (let ic = 0; ic < cig; ic++)
            for (let ky = 0; ky < kh; ky++) {
              const iy = oy * sh + ky - pt;
              if (iy < 0 || iy >= h) continue;
              for (let kx = 0; kx < kw; kx++) {
                const ix = ox * sw + kx - pl;
                if (ix < 0 || ix >= w) continue;
                s += x[((b * ci + g0 + ic) * h + iy) * w + ix] * wt[((oc * cig + ic) * kh + ky) * kw + kx];
              }
            }
          y[((b * co + oc) * ho + oy) * wo + ox] = s;
        }
    }
  return y;
}

/** The training graph's loss in float64: Σ sₙ·CEₙ / Σ sₙ, sₙ = sample_weightₙ·Σ_c class_weight_c·targets_nc. */
export function referenceLoss(
  logits: ArrayLike<number>,
  n: number,
  k: number,
  targets: ArrayLike<number>,
  options: {
    classWeights?: ArrayLike<number>;
    sampleWeights?: ArrayLike<number>;
    labelSmoothing?: number;
  } = {},
): number {
  const eps = options.labelSmoothing ?? 0;
  let num = 0;
  let den = 0;
  for (let b = 0; b < n; b++) {
    let max = -Infinity;
    for (let c = 0; c < k; c++) max = Math.max(max, logits[b * k + c]);
    let z = 0;
    for (let c = 0; c < k; c++) z += Math.exp(logits[b * k + c] - max);
    const lse = max + Math.log(z);
    let ce = 0;
    let s = 0;
    for (let c = 0; c < k; c++) {
      const t = targets[b * k + c];
      ce -= ((1 - eps) * t + eps / k) * (logits[b * k + c] - lse);
      s += (options.classWeights?.[c] ?? 1) * t;
    }
    s *= options.sampleWeights?.[b] ?? 1;
    num += s * ce;
    den += s;
  }
  return num / den;
}
