/** Validation during fine-tuning: logits of the unaugmented validation crops under the current weights, scored. */
import { buildInferenceGraph } from '../../model/net/forward.js';
import type { NetSpec, ParamInfo } from '../../model/net/spec.js';
import { OnnxSession } from '../../model/onnx/runtime.js';
import { argmax } from '../../model/softmax.js';
import { TRAIN_IO } from '../../model/training-graph/graphs.js';
import { fillBatch, type CropStore } from '../batches.js';
import { fitTemperature, softmax } from '../calibration.js';
import type { Dataset } from '../dataset.js';

export interface ValidationScore {
  /**
   * What early stopping watches: the mean NLL after temperature scaling on these logits (fine-tuning makes a
   * network over-confident long before it ranks worse, and the exported model is calibrated anyway), weighted
   * by the source/class balancing weights as the frozen path's l2 choice is.
   */
  nll: number;
  /** The same NLL at temperature 1. */
  rawNll: number;
  temperature: number;
  accuracy: number;
  /** Accuracy weighted like `nll` (each source and class counts equally). */
  balancedAccuracy: number;
  perSource: Record<string, number>;
}

/** Logits of the validation crops under the current weights; one session, the trainable weights fed in. */
export class Validator {
  private constructor(
    private readonly session: OnnxSession,
    private readonly params: ParamInfo[],
    private readonly store: CropStore,
    private readonly items: number[],
    private readonly k: number,
  ) {}

  static async create(
    spec: NetSpec,
    params: ParamInfo[],
    store: CropStore,
    items: number[],
    threads: number,
  ) {
    const model = buildInferenceGraph(spec, { paramInputs: params.map((p) => p.name) });
    const session = await OnnxSession.create(model, threads, { spin: false });
    return new Validator(session, params, store, items, spec.head.classes);
  }

  async logits(): Promise<Float32Array> {
    const batch = 32;
    const s = this.store.size;
    const out = new Float32Array(this.items.length * this.k);
    const feeds: Record<string, { data: Float32Array; dims: number[] }> = {};
    for (const p of this.params) feeds[p.name] = { data: p.data, dims: p.dims };
    for (let start = 0; start < this.items.length; start += batch) {
      const items = this.items.slice(start, start + batch);
      const input = new Float32Array(items.length * 3 * s * s);
      fillBatch(this.store, items, null, input);
      feeds[TRAIN_IO.input] = { data: input, dims: [items.length, 3, s, s] };
      const r = await this.session.run(feeds, [TRAIN_IO.logits]);
      out.set(r[TRAIN_IO.logits].data, start * this.k);
    }
    return out;
  }

  close(): Promise<void> {
    return this.session.close();
  }
}

/**
 * The validation score of `logits` (rows = `items` of `ds`), weighted per item by `weights` (the source/class
 * balancing weights of the loss).
 */
export function scoreValidation(
  logits: Float32Array,
  items: number[],
  ds: Dataset,
  weights: Float32Array,
  k: number,
): ValidationScore {
  const y = Int32Array.from(items, (i) => ds.items[i].labelIndex);
  const temperature = fitTemperature(logits, y, k);
  const nllAt = (p: Float32Array) => {
    let sum = 0;
    let wsum = 0;
    items.forEach((i, j) => {
      sum -= weights[i] * Math.log(Math.max(p[j * k + y[j]], 1e-30));
      wsum += weights[i];
    });
    return sum / wsum;
  };
  const p = softmax(logits, k);
  let hit = 0;
  let whit = 0;
  let wsum = 0;
  const bySource = ds.sources.map(() => ({ n: 0, hit: 0 }));
  items.forEach((i, j) => {
    const ok = argmax(p, j, k) === y[j] ? 1 : 0;
    hit += ok;
    whit += ok * weights[i];
    wsum += weights[i];
    const src = bySource[ds.items[i].source];
    src.n++;
    src.hit += ok;
  });
  const perSource: Record<string, number> = {};
  ds.sources.forEach((src, si) => {
    if (bySource[si].n > 0) perSource[src.name] = bySource[si].hit / bySource[si].n;
  });
  return {
    nll: nllAt(softmax(logits, k, temperature)),
    rawNll: nllAt(p),
    temperature,
    accuracy: hit / items.length,
    balancedAccuracy: whit / wsum,
    perSource,
  };
}
