/**
 * Calibration for static quantization: the range of values each activation tensor takes on sample inputs,
 * measured by running a copy of the model that also outputs those tensors.
 */
import { OnnxSession, type FloatTensor } from './runtime.js';
import { withOutputs, type Range } from './quantize.js';

/**
 * 'minmax': the extreme values seen. 'percentile': the `percentile`-th and (100 − `percentile`)-th
 * percentiles of all values seen, which ignores a few outliers in exchange for finer steps elsewhere.
 * 'mse': the range whose 8-bit quantization has the least mean squared error over all values seen (rounding
 * inside the range, clipping outside it): for heavy-tailed tensors it clips far more than a percentile does.
 */
export type CalibrationMethod = 'minmax' | 'percentile' | 'mse';

export interface CalibrationOptions {
  method: CalibrationMethod;
  /** For 'percentile': the share of values kept inside the range, in percent. */
  percentile?: number;
  /** Histogram bins per tensor for 'percentile'. */
  bins?: number;
  onProgress?: (done: number, total: number) => void;
}

export const DEFAULT_PERCENTILE = 99.999;

/**
 * The range of every tensor in `tensors` over the batches `inputs()` yields (fed to the model's single
 * input). 'percentile' reads the batches twice: once for the extremes, once for a histogram between them.
 */
export async function calibrateRanges(
  model: Uint8Array,
  tensors: string[],
  inputs: () => Iterable<FloatTensor>,
  options: CalibrationOptions,
): Promise<Map<string, Range>> {
  const session = await OnnxSession.create(withOutputs(model, tensors), 2, { spin: false });
  try {
    const inputName = session.inputNames[0];
    const fetched = tensors.filter((t) => t !== inputName);
    const passes = options.method === 'minmax' ? 1 : 2;
    let total = 0;
    for (const _ of inputs()) total++;
    let done = 0;
    const each = async (visit: (name: string, data: Float32Array) => void) => {
      for (const batch of inputs()) {
        const out = await session.run({ [inputName]: batch }, fetched);
        if (tensors.includes(inputName)) visit(inputName, batch.data);
        for (const t of fetched) visit(t, out[t].data);
        done++;
        options.onProgress?.(done, total * passes);
      }
    };
    const ranges = new Map<string, Range>(tensors.map((t) => [t, { min: Infinity, max: -Infinity }]));
    await each((name, data) => {
      const r = ranges.get(name)!;
      for (let i = 0; i < data.length; i++) {
        const v = data[i];
        if (v < r.min) r.min = v;
        if (v > r.max) r.max = v;
      }
    });
    if (done === 0) throw new Error('Calibration needs at least one input.');
    if (options.method === 'minmax') return ranges;

    const bins = options.bins ?? 4096;
    const hist = new Map(tensors.map((t) => [t, new Float64Array(bins)]));
    await each((name, data) => {
      const { min, max } = ranges.get(name)!;
      const h = hist.get(name)!;
      const k = max > min ? bins / (max - min) : 0;
      for (let i = 0; i < data.length; i++) h[Math.min(bins - 1, Math.floor((data[i] - min) * k))]++;
    });
    const keep = (options.percentile ?? DEFAULT_PERCENTILE) / 100;
    const out = new Map<string, Range>();
    for (const t of tensors)
      out.set(
        t,
        options.method === 'mse'
          ? minimumErrorRange(hist.get(t)!, ranges.get(t)!)
          : percentileRange(hist.get(t)!, ranges.get(t)!, keep),
      );
    return out;
  } finally {
    await session.close();
  }
}

/** The histogram's lower and upper `keep` quantiles (bin edges, so the kept share is at least `keep`). */
export function percentileRange(h: Float64Array, r: Range, keep: number): Range {
  const n = h.reduce((a, b) => a + b, 0);
  const tail = n * (1 - keep);
  const width = (r.max - r.min) / h.length;
  let lo = 0;
  for (let acc = 0; lo < h.length - 1 && acc + h[lo] <= tail; lo++) acc += h[lo];
  let hi = h.length - 1;
  for (let acc = 0; hi > 0 && acc + h[hi] <= tail; hi--) acc += h[hi];
  return { min: r.min + lo * width, max: r.min + (hi + 1) * width };
}

/** Shrink factors tried for each end of the range, from the full range down to 2 % of it. */
const SHRINK = Array.from({ length: 50 }, (_, i) => 1 - i * 0.02);

/**
 * The range, within `r` and holding 0, whose 255 equal steps give the least squared error over the
 * histogram: values inside round (error step²/12 each), values outside clip to the nearer end.
 */
export function minimumErrorRange(h: Float64Array, r: Range): Range {
  const lo0 = Math.min(0, r.min);
  const hi0 = Math.max(0, r.max);
  const width = (r.max - r.min) / h.length;
  if (!(width > 0)) return { min: lo0, max: hi0 };
  const centre = (i: number) => r.min + (i + 0.5) * width;
  let best = { min: lo0, max: hi0 };
  let bestErr = Infinity;
  for (const f of lo0 < 0 ? SHRINK : [1]) {
    for (const g of hi0 > 0 ? SHRINK : [1]) {
      const lo = lo0 * f;
      const hi = hi0 * g;
      const step = (hi - lo) / 255;
      let err = 0;
      for (let i = 0; i < h.length; i++) {
        if (h[i] === 0) continue;
        const v = centre(i);
        const d = v < lo ? lo - v : v > hi ? v - hi : 0;
        err += h[i] * (d * d + (step * step) / 12);
      }
      if (err < bestErr) {
        bestErr = err;
        best = { min: lo, max: hi };
      }
    }
  }
  return best;
}
