/**
 * Batch-norm alignment of a model whose batch normalisation was folded into its convolutions (MobileNetV2
 * from the TFLite file): the per-channel statistics of each convolution's output (where BatchNorm used to
 * act) are measured on a lab's images and the convolution's weights and bias rescaled per output channel so
 * that they match the statistics of the training data, AdaBN-style (Li et al. 2016, "Revisiting batch
 * normalization for practical domain adaptation"). Nothing here needs labels.
 */
import { ModelError } from '../errors.js';
import { OUTPUTS } from './classifier-graph.js';
import {
  GraphBuilder,
  readFloatInitializers,
  readNodes,
  replaceFloatInitializers,
} from './onnx/graph-builder.js';
import { OnnxSession } from './onnx/runtime.js';

/** One convolution of the backbone, as the model file names it. */
export interface AlignableConv {
  /** The spec's layer name; its parameters are `${name}/W` and `${name}/B`. */
  name: string;
  /** The graph tensor of its output before any activation. */
  output: string;
  channels: number;
}

/** Per-channel mean and variance of one convolution's output over images and positions. */
export interface ChannelStats {
  mean: Float64Array;
  variance: Float64Array;
}
export type LayerStats = Map<string, ChannelStats>;

/** Sub-graphs that are not the backbone (the head's CAM, familiarity, these statistics) carry these prefixes. */
const NOT_BACKBONE = ['head/', 'familiarity/', 'align/'];

/**
 * The backbone's convolutions in graph order (a topological order), read from the model file: every Conv
 * whose weight is an initializer `<layer>/W` with its bias `<layer>/B`.
 */
export function alignableConvs(model: Uint8Array): AlignableConv[] {
  const weights = readFloatInitializers(model);
  const out: AlignableConv[] = [];
  for (const n of readNodes(model)) {
    if (n.opType !== 'Conv' || n.inputs.length < 3) continue;
    const [, w, b] = n.inputs;
    if (!w.endsWith('/W') || NOT_BACKBONE.some((p) => w.startsWith(p))) continue;
    const name = w.slice(0, -2);
    const bias = weights.get(b);
    if (b !== `${name}/B` || !bias || !weights.has(w)) continue;
    out.push({ name, output: n.outputs[0], channels: bias.length });
  }
  if (out.length === 0)
    throw new ModelError('The model has no convolutions this version can align.', 'bad_model');
  return out;
}

const statOutputs = (i: number) => [`align/${i}/mean`, `align/${i}/sq`];

/**
 * The model with two more outputs per convolution: the per-channel mean of its output and of its square over
 * the batch and every position ([C] each). Only `features` of the original outputs is kept.
 *
 * With `normalizeTo`, each convolution's output is also normalised with the batch's own statistics and given
 * the reference mean and standard deviation before the next layer reads it (batch norm in training mode,
 * AdaBN's way of measuring): every layer's statistics are then those of its input already aligned, all
 * in one pass. The outputs stay the statistics before normalisation.
 */
export function withChannelStatsOutputs(
  model: Uint8Array,
  convs: AlignableConv[],
  normalizeTo?: LayerStats,
): Uint8Array {
  const g = new GraphBuilder('hematovision_align', 13, 'align/');
  const rename = new Map<string, string>();
  const flat = normalizeTo ? g.int64s('flat', [-1]) : '';
  const one = normalizeTo ? g.scalar('one', 1) : '';
  convs.forEach((c, i) => {
    const [mean, sq] = statOutputs(i);
    g.output(mean, [c.channels]);
    g.output(sq, [c.channels]);
    if (!normalizeTo) {
      g.op('ReduceMean', [c.output], { axes: [0, 2, 3], keepdims: 0 }, mean);
      g.op('ReduceMean', [g.op('Mul', [c.output, c.output])], { axes: [0, 2, 3], keepdims: 0 }, sq);
      return;
    }
    const ref = normalizeTo.get(c.name);
    if (!ref || ref.mean.length !== c.channels)
      throw new ModelError(`The training statistics do not describe layer ${c.name}.`, 'bad_stats');
    const raw = g.fresh(`raw/${i}`);
    rename.set(c.output, raw);
    const m = g.op('ReduceMean', [raw], { axes: [0, 2, 3], keepdims: 1 });
    const diff = g.op('Sub', [raw, m]);
    const v = g.op('ReduceMean', [g.op('Mul', [diff, diff])], { axes: [0, 2, 3], keepdims: 1 });
    g.op('Reshape', [m, flat], {}, mean);
    g.op('Reshape', [g.op('Add', [v, g.op('Mul', [m, m])]), flat], {}, sq);
    // The same rules as alignmentAffine: scales clamped, a channel with no spread on the reference side kept.
    const S = Float32Array.from(ref.variance, (x) => Math.sqrt(x));
    const dead = Float32Array.from(S, (x) => (x > 1e-6 ? 0 : 1));
    const shape = [1, c.channels, 1, 1];
    const ratio = g.op('Div', [
      g.constant('S', S, shape),
      g.op('Sqrt', [g.op('Add', [v, g.scalar('eps', 1e-12)])]),
    ]);
    const clipped = g.op('Clip', [ratio, g.scalar('lo', 1 / MAX_SCALE), g.scalar('hi', MAX_SCALE)]);
    const scale = g.op('Add', [
      g.op('Mul', [clipped, g.op('Sub', [one, g.constant('dead', dead, shape)])]),
      g.constant('dead', dead, shape),
    ]);
    g.op(
      'Add',
      [g.op('Mul', [diff, scale]), g.constant('M', Float32Array.from(ref.mean), shape)],
      {},
      c.output,
    );
  });
  return g.mergeInto(model, {
    keepOutputs: [OUTPUTS.features],
    renameOutputs: normalizeTo ? rename : undefined,
  });
}

/**
 * Runs a model over batches of images and adds up every convolution's channel statistics (float64 across
 * batches), returning the pooled `features` of each batch as well.
 */
export class ChannelStatsRunner {
  private readonly sum: Float64Array[];
  private readonly sumSq: Float64Array[];
  private images = 0;

  private constructor(
    private readonly session: OnnxSession,
    readonly convs: AlignableConv[],
  ) {
    this.sum = convs.map((c) => new Float64Array(c.channels));
    this.sumSq = convs.map((c) => new Float64Array(c.channels));
  }

  /** With `normalizeTo`, measures as withChannelStatsOutputs does with it (each layer's input aligned). */
  static async create(model: Uint8Array, threads = 2, normalizeTo?: LayerStats): Promise<ChannelStatsRunner> {
    const convs = alignableConvs(model);
    return new ChannelStatsRunner(
      await OnnxSession.create(withChannelStatsOutputs(model, convs, normalizeTo), threads),
      convs,
    );
  }

  /** n NCHW images → their n×d features; their statistics are added to the running totals. */
  async run(input: Float32Array, n: number, dims: [number, number, number]): Promise<Float32Array> {
    const names = this.convs.flatMap((_, i) => statOutputs(i));
    const r = await this.session.run({ input: { data: input, dims: [n, ...dims] } }, [
      OUTPUTS.features,
      ...names,
    ]);
    this.convs.forEach((_, i) => {
      const [mean, sq] = statOutputs(i);
      const m = r[mean].data;
      const s = r[sq].data;
      for (let c = 0; c < m.length; c++) {
        this.sum[i][c] += n * m[c];
        this.sumSq[i][c] += n * s[c];
      }
    });
    this.images += n;
    return r[OUTPUTS.features].data;
  }

  /** The statistics of every image run so far. */
  stats(): LayerStats {
    if (this.images === 0) throw new ModelError('No images were run.', 'no_images');
    const out: LayerStats = new Map();
    this.convs.forEach((c, i) => {
      const mean = this.sum[i].map((v) => v / this.images);
      const variance = this.sumSq[i].map((v, j) => Math.max(v / this.images - mean[j] ** 2, 0));
      out.set(c.name, { mean, variance });
    });
    return out;
  }

  async close(): Promise<void> {
    await this.session.close();
  }
}

/** Scales kept within this factor either way: a channel (nearly) dead on one side is shifted, not blown up. */
export const MAX_SCALE = 10;

/** y' = scale·y + shift per channel: maps `current` onto `reference`. */
export interface ChannelAffine {
  scale: Float64Array;
  shift: Float64Array;
}

/**
 * The per-channel affine map taking each layer's `current` statistics to the `reference` ones. A channel
 * whose standard deviation is (near) zero on either side only has its mean moved, and scales are clamped to
 * [1/MAX_SCALE, MAX_SCALE]; `clamped` counts the channels either rule touched.
 */
export function alignmentAffine(
  current: LayerStats,
  reference: LayerStats,
): { affine: Map<string, ChannelAffine>; clamped: number } {
  const affine = new Map<string, ChannelAffine>();
  let clamped = 0;
  for (const [name, cur] of current) {
    const ref = reference.get(name);
    if (!ref || ref.mean.length !== cur.mean.length)
      throw new ModelError(
        `The training statistics do not describe layer ${name} of this model.`,
        'bad_stats',
      );
    const k = cur.mean.length;
    const scale = new Float64Array(k);
    const shift = new Float64Array(k);
    for (let c = 0; c < k; c++) {
      const s = Math.sqrt(cur.variance[c]);
      const S = Math.sqrt(ref.variance[c]);
      let a = s > 1e-6 && S > 1e-6 ? S / s : 1;
      if (a === 1 && s !== S) clamped++;
      else if (a > MAX_SCALE || a < 1 / MAX_SCALE) {
        a = Math.min(MAX_SCALE, Math.max(1 / MAX_SCALE, a));
        clamped++;
      }
      scale[c] = a;
      shift[c] = ref.mean[c] - a * cur.mean[c];
    }
    affine.set(name, { scale, shift });
  }
  return { affine, clamped };
}

/**
 * Folds per-channel affine maps into the convolutions: W ← a·W (each output channel's block of OIHW
 * weights), B ← a·B + shift, so the layer's output becomes a·y + shift with no new node.
 */
export function foldChannelAffine(model: Uint8Array, affine: Map<string, ChannelAffine>): Uint8Array {
  const init = readFloatInitializers(model);
  const values = new Map<string, Float32Array>();
  for (const [name, { scale, shift }] of affine) {
    const w = init.get(`${name}/W`);
    const b = init.get(`${name}/B`);
    if (!w || !b || b.length !== scale.length || w.length % b.length !== 0)
      throw new ModelError(`The model has no convolution ${name} of ${scale.length} channels.`, 'bad_model');
    const per = w.length / b.length;
    const w2 = new Float32Array(w.length);
    const b2 = new Float32Array(b.length);
    for (let c = 0; c < b.length; c++) {
      for (let j = c * per; j < (c + 1) * per; j++) w2[j] = scale[c] * w[j];
      b2[c] = scale[c] * b[c] + shift[c];
    }
    values.set(`${name}/W`, w2);
    values.set(`${name}/B`, b2);
  }
  return replaceFloatInitializers(model, values);
}

/** How far the channel statistics are from the reference: the worst channel and the median one. */
export interface StatsMismatch {
  /** |Δmean| / reference std */
  mean: number;
  /** |std / reference std − 1| */
  std: number;
  medianMean: number;
  medianStd: number;
}

/**
 * How far `current` is from `reference` over every channel of every layer (channels with no spread on the
 * reference side left out).
 */
export function statsMismatch(current: LayerStats, reference: LayerStats): StatsMismatch {
  const dm: number[] = [];
  const ds: number[] = [];
  for (const [name, cur] of current) {
    const ref = reference.get(name);
    if (!ref) continue;
    for (let c = 0; c < cur.mean.length; c++) {
      const S = Math.sqrt(ref.variance[c]);
      if (!(S > 1e-6)) continue;
      dm.push(Math.abs(cur.mean[c] - ref.mean[c]) / S);
      ds.push(Math.abs(Math.sqrt(cur.variance[c]) / S - 1));
    }
  }
  const median = (v: number[]) => {
    const s = Float64Array.from(v).sort();
    return s.length === 0 ? 0 : s[Math.floor(s.length / 2)];
  };
  const max = (v: number[]) => v.reduce((a, b) => Math.max(a, b), 0);
  return { mean: max(dm), std: max(ds), medianMean: median(dm), medianStd: median(ds) };
}
