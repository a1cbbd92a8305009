/**
 * Training graphs generated from a NetSpec: loss + every weight gradient, and the frozen prefix. The forward
 * layers are net/forward's, the writer of inference graphs too. The backward pass is written op by op in
 * opset 13, in the forms ONNX Runtime's CPU kernels run fastest:
 * - 1×1 conv: dW = Σₙ dY[n]·X[n]ᵀ (batched MatMul, or one Gemm on small maps), dX = Conv(dY, Wᵀ);
 * - group-1 k×k conv: dW = Conv(Xᵀ, dYᵀ) with dilation = stride and the forward pads, then Slice/Transpose;
 * - depthwise dW: one grouped Conv of X ([1, C·N, H, W]) with dYᵀ as kernel, or, with a fixed batch at
 *   stride 1, direct GEMMs (see depthwiseWeightGradGemm);
 * - dX at stride 1: Conv with the flipped kernel and complementary pads; at stride 2: ConvTranspose with the
 *   forward's asymmetric pads and output_padding for rows the forward never read;
 * - Clip(0,6): mask Cast(And(Greater, Less)) of the clipped output (so ORT still fuses Conv+Clip);
 * - loss: LogSoftmax, dlogits = (softmax − ỹ)·sₙ/Σs.
 */
import { ModelError } from '../../errors.js';
import { emitLayers, NET_IO, pool, sharedScalar } from '../net/forward.js';
import {
  HEAD_BLOCK,
  inferShapes,
  specParams,
  type ConvLayer,
  type NetSpec,
  type ParamInfo,
} from '../net/spec.js';
import { GraphBuilder } from '../onnx/graph-builder.js';

/** Graph tensor names every generated graph uses. */
export const TRAIN_IO = {
  ...NET_IO,
  targets: 'targets',
  classWeights: 'class_weights',
  sampleWeights: 'sample_weights',
  loss: 'loss',
} as const;

export const gradName = (param: string): string => `grad_${param}`;
/** Name of a pooled feature vector when it crosses from a frozen prefix graph into the training graph. */
export const pooledName = (feature: string): string => `${feature}/pooled`;

type Shape3 = [number, number, number];

export interface TrainingGraphOptions {
  classes?: number;
  /** Layers of blocks below this are frozen (0 trains everything; HEAD_BLOCK trains the head only). */
  trainFromBlock?: number;
  /** ε: the target becomes (1 − ε)·y + ε/k. */
  labelSmoothing?: number;
  /**
   * 'inline': frozen layers live in the training graph with their weights as initializers.
   * 'separate': they form a second, inference-only graph whose outputs feed the training graph.
   */
  frozenPrefix?: 'inline' | 'separate';
  /**
   * Build for this exact batch size (smaller batches are padded by TrainingSession with zero-weight rows).
   * A fixed batch lets depthwise weight gradients run as plain GEMMs, several times faster.
   */
  batchSize?: number;
}

export interface TrainingGraph {
  /** Inputs: input (or the prefix outputs), targets [N,k], class_weights [k], sample_weights [N] and every
   * trainable parameter by name. Outputs: loss [], logits [N,k] and grad_<param> for every trainable param. */
  model: Uint8Array;
  /** With frozenPrefix 'separate' (and a non-empty frozen part): input → `prefixOutputs`. */
  prefix?: Uint8Array;
  /** Graph tensors passed from the prefix graph to the training graph, with their per-image shapes. */
  prefixOutputs: { name: string; dims: number[] }[];
  /** Trainable parameters in input order (live arrays of the spec). */
  trainable: ParamInfo[];
  classes: number;
  trainFromBlock: number;
  /** The fixed batch the graph was built for, if any. */
  batchSize?: number;
}

/**
 * The training graph: forward pass, softmax cross-entropy with label smoothing, class and sample weights,
 * and the gradient of every trainable weight, written as plain opset-13 ONNX ops that ONNX Runtime runs.
 *
 * loss = Σₙ sₙ·CEₙ / Σₙ sₙ with sₙ = sample_weightₙ · Σ_c class_weight_c·targets_nc, so with unit weights it
 * is the batch mean and dlogits = (softmax − ỹ)/N.
 */
export function buildTrainingGraph(spec: NetSpec, options: TrainingGraphOptions = {}): TrainingGraph {
  const shapes = inferShapes(spec);
  const k = spec.head.classes;
  if (k < 1) throw new ModelError(`${spec.name} has no head to train: give it the classes.`, 'bad_spec');
  if (options.classes !== undefined && options.classes !== k) {
    throw new ModelError(`The head has ${k} classes, not ${options.classes}.`, 'bad_spec');
  }
  const from = options.trainFromBlock ?? 0;
  const eps = options.labelSmoothing ?? 0;
  if (!(eps >= 0 && eps < 1)) throw new ModelError('Label smoothing must be in [0, 1).', 'bad_spec');
  const params = specParams(spec);
  const trainable = params.filter((p) => p.block >= from);

  // A tensor needs a gradient if a trainable layer made it or feeds it.
  const needsGrad = new Set<string>();
  for (const l of spec.layers) {
    const ins = l.kind === 'add' ? l.inputs : [l.input];
    if ((l.kind === 'conv' && l.block >= from) || ins.some((i) => needsGrad.has(i))) needsGrad.add(l.name);
  }
  const frozen = spec.layers.filter((l) => !needsGrad.has(l.name));
  const live = spec.layers.filter((l) => needsGrad.has(l.name));
  const separate = options.frozenPrefix === 'separate' && frozen.length > 0;
  const batchSize = options.batchSize;
  if (batchSize !== undefined && !(Number.isInteger(batchSize) && batchSize > 0)) {
    throw new ModelError('The batch size must be a positive whole number.', 'bad_spec');
  }
  const batch = batchSize ?? 'N';

  const g = new GraphBuilder(`${spec.name}_training`);
  const given = new Map<string, string>();
  const prefixOutputs: TrainingGraph['prefixOutputs'] = [];
  let prefix: Uint8Array | undefined;
  const pooledGiven = new Map<string, string>();
  if (separate) {
    // The boundary: frozen tensors read by live layers, and pooled frozen features.
    const reads = new Set(live.flatMap((l) => (l.kind === 'add' ? l.inputs : [l.input])));
    const pg = new GraphBuilder(`${spec.name}_frozen_prefix`);
    const { channels, height, width } = spec.input;
    const img = pg.input(TRAIN_IO.input, [batch, channels, height, width]);
    const e = emitLayers(pg, spec, params, {
      inputParams: new Set(),
      given: new Map([[spec.input.name, img]]),
      layers: frozen.map((l) => l.name),
    });
    for (const name of reads) {
      if (needsGrad.has(name)) continue;
      const dims = name === spec.input.name ? [channels, height, width] : [...shapes.get(name)!];
      if (name !== spec.input.name) {
        const produced = e.tensors.get(name)!;
        if (produced !== name) pg.op('Identity', [produced], {}, name);
        pg.output(name, [batch, ...dims]);
      }
      prefixOutputs.push({ name, dims });
      given.set(name, g.input(name, [batch, ...dims]));
    }
    for (const f of spec.features) {
      if (needsGrad.has(f)) continue;
      const name = pooledName(f);
      const c = shapes.get(f)![0];
      pg.op('Flatten', [pg.op('GlobalAveragePool', [e.tensors.get(f)!])], { axis: 1 }, name);
      pg.output(name, [batch, c]);
      prefixOutputs.push({ name, dims: [c] });
      pooledGiven.set(f, g.input(name, [batch, c]));
    }
    // When the image itself crosses, the prefix graph has no use: the training graph reads the image.
    const onlyImage = prefixOutputs.every((p) => p.name === spec.input.name);
    prefix = onlyImage ? undefined : pg.toBytes({ doc: 'Frozen prefix of a HematoVision training graph.' });
    if (onlyImage) prefixOutputs.length = 0;
  } else {
    const { channels, height, width } = spec.input;
    given.set(spec.input.name, g.input(TRAIN_IO.input, [batch, channels, height, width]));
  }

  const e = emitLayers(g, spec, params, {
    inputParams: new Set(trainable.map((p) => p.name)),
    given,
    layers: (separate ? live : spec.layers).map((l) => l.name),
  });
  const t = (name: string) => e.tensors.get(name)!;
  const ints = new Map<string, string>();
  const i64 = (...v: number[]) => {
    const key = v.join(',');
    if (!ints.has(key)) ints.set(key, g.int64s('ints', v));
    return ints.get(key)!;
  };

  // Head and loss.
  g.nodeScope = 'loss/';
  const d = spec.features.reduce((a, f) => a + shapes.get(f)![0], 0);
  const pooled = spec.features.map((f) => pooledGiven.get(f) ?? pool(g, t(f), `${f}/pooled`));
  const feats =
    pooled.length === 1 ? pooled[0] : g.op('Concat', pooled, { axis: 1 }, g.fresh(TRAIN_IO.features));
  const headTrains = from <= HEAD_BLOCK;
  const headW = headTrains ? g.input('head/W', [k, d]) : g.constant('head/W', spec.head.weight, [k, d]);
  const headB = headTrains ? g.input('head/B', [k]) : g.constant('head/B', spec.head.bias, [k]);
  g.op('Gemm', [feats, headW, headB], { transB: 1 }, TRAIN_IO.logits);
  const targets = g.input(TRAIN_IO.targets, [batch, k]);
  const classW = g.input(TRAIN_IO.classWeights, [k]);
  const sampleW = g.input(TRAIN_IO.sampleWeights, [batch]);
  const logp = g.op('LogSoftmax', [TRAIN_IO.logits], { axis: 1 });
  const smooth =
    eps > 0
      ? g.op('Add', [g.op('Mul', [targets, g.scalar('keep', 1 - eps)]), g.scalar('spread', eps / k)])
      : targets;
  const s = g.op('Mul', [
    g.op('ReduceSum', [g.op('Mul', [targets, classW]), i64(1)], { keepdims: 0 }),
    sampleW,
  ]);
  const sTotal = g.op('ReduceSum', [s], { keepdims: 0 });
  const ce = g.op('Neg', [g.op('ReduceSum', [g.op('Mul', [smooth, logp]), i64(1)], { keepdims: 0 })]);
  g.op('Div', [g.op('ReduceSum', [g.op('Mul', [s, ce])], { keepdims: 0 }), sTotal], {}, TRAIN_IO.loss);
  const share = g.op('Unsqueeze', [g.op('Div', [s, sTotal]), i64(1)]);
  const dz = g.op('Mul', [g.op('Sub', [g.op('Exp', [logp]), smooth]), share]);

  const outputs: { name: string; dims: number[] }[] = [];
  const grad = (p: string, value: string) => {
    const info = params.find((q) => q.name === p)!;
    outputs.push({ name: gradName(p), dims: info.dims });
    g.op('Identity', [value], {}, gradName(p));
  };
  if (headTrains) {
    grad('head/W', g.op('Gemm', [dz, feats], { transA: 1 }));
    grad('head/B', g.op('ReduceSum', [dz, i64(0)], { keepdims: 0 }));
  }

  // Gradient contributions per tensor; `full` is false for the [N,C,1,1] share from global pooling.
  const contributions = new Map<string, { name: string; full: boolean }[]>();
  const contribute = (tensor: string, name: string, full: boolean) => {
    if (!needsGrad.has(tensor)) return;
    const list = contributions.get(tensor) ?? [];
    list.push({ name, full });
    contributions.set(tensor, list);
  };
  if (spec.features.some((f) => needsGrad.has(f))) {
    const dFeats = g.op('MatMul', [dz, headW]);
    let offset = 0;
    for (const f of spec.features) {
      const [c, h, w] = shapes.get(f)!;
      if (needsGrad.has(f)) {
        const part = g.op('Slice', [dFeats, i64(offset), i64(offset + c), i64(1)]);
        const scaled = g.op('Mul', [part, g.scalar('inv_area', 1 / (h * w))]);
        contribute(f, g.op('Reshape', [scaled, i64(-1, c, 1, 1)]), false);
      }
      offset += c;
    }
  }

  for (const l of [...live].reverse()) {
    const list = contributions.get(l.name);
    if (!list) continue;
    g.nodeScope = `bw/${l.name}/`;
    list.sort((a, b) => Number(b.full) - Number(a.full));
    let dy = list[0].name;
    for (const c of list.slice(1)) dy = g.op('Add', [dy, c.name]);
    const full = list[0].full;
    if (l.kind === 'add') {
      for (const i of l.inputs) contribute(i, dy, full);
      continue;
    }
    const shape = shapes.get(l.name)!;
    let dPre: string;
    if (l.relu6) {
      g.nodeScope = `bw/${l.name}/relu/`;
      const y = t(l.name);
      const inside = g.op('And', [
        g.op('Greater', [y, sharedScalar(g, 0)]),
        g.op('Less', [y, sharedScalar(g, 6)]),
      ]);
      dPre = g.op('Mul', [dy, g.op('Cast', [inside], { to: 1 })]);
    } else {
      dPre = full ? dy : g.op('Expand', [dy, i64(1, ...shape)]);
    }
    const x = t(l.input);
    const xShape =
      l.input === spec.input.name
        ? ([spec.input.channels, spec.input.height, spec.input.width] as Shape3)
        : shapes.get(l.input)!;
    const w = e.params.get(`${l.name}/W`)!;
    if (l.block >= from) {
      g.nodeScope = `bw/${l.name}/dB/`;
      grad(`${l.name}/B`, g.op('ReduceSum', [dPre, i64(0, 2, 3)], { keepdims: 0 }));
      g.nodeScope = `bw/${l.name}/dW/`;
      grad(`${l.name}/W`, convWeightGrad(g, l, x, dPre, xShape, shape, i64, batchSize));
    }
    g.nodeScope = `bw/${l.name}/dX/`;
    if (needsGrad.has(l.input)) contribute(l.input, convInputGrad(g, l, dPre, w, xShape, shape, i64), true);
  }
  g.nodeScope = '';

  g.output(TRAIN_IO.loss, []);
  g.output(TRAIN_IO.logits, [batch, k]);
  // Outputs in the order of `trainable`.
  for (const p of trainable) {
    const o = outputs.find((q) => q.name === gradName(p.name));
    if (!o) throw new ModelError(`No gradient reaches ${p.name}.`, 'bad_spec');
    g.output(o.name, o.dims);
  }
  return {
    model: g.toBytes({ doc: `Training graph of ${spec.name}: loss and gradients of blocks ≥ ${from}.` }),
    prefix,
    prefixOutputs,
    trainable,
    classes: k,
    trainFromBlock: from,
    batchSize,
  };
}

type Ints = (...v: number[]) => string;

/** Kernel flipped in both spatial axes. */
const flip = (g: GraphBuilder, w: string, i64: Ints) =>
  g.op('Slice', [w, i64(-1, -1), i64(-(1 << 30), -(1 << 30)), i64(2, 3), i64(-1, -1)]);

/** dL/dX of a convolution. */
function convInputGrad(
  g: GraphBuilder,
  l: ConvLayer,
  dPre: string,
  w: string,
  x: Shape3,
  y: Shape3,
  i64: Ints,
): string {
  const [kh, kw] = l.kernel;
  const [pt, pl, pb, pr] = l.pads;
  const depthwise = l.group === l.inChannels && l.group === l.outChannels;
  const unitStride = l.stride[0] === 1 && l.stride[1] === 1;
  const fitsFlip = pt <= kh - 1 && pb <= kh - 1 && pl <= kw - 1 && pr <= kw - 1;
  if (unitStride && fitsFlip && (l.group === 1 || depthwise)) {
    // Stride 1: a correlation with the flipped (and, for group 1, transposed) kernel and complementary pads.
    const wt = l.group === 1 ? g.op('Transpose', [w], { perm: [1, 0, 2, 3] }) : w;
    const kernel = kh === 1 && kw === 1 ? wt : flip(g, wt, i64);
    return g.op('Conv', [dPre, kernel], {
      kernel_shape: l.kernel,
      pads: [kh - 1 - pt, kw - 1 - pl, kh - 1 - pb, kw - 1 - pr],
      group: l.group,
    });
  }
  // Strided: the transposed convolution; output_padding restores rows the forward stride never reached.
  const extra = [0, 1].map(
    (a) => x[a + 1] + l.pads[a] + l.pads[a + 2] - ((y[a + 1] - 1) * l.stride[a] + l.kernel[a]),
  );
  return g.op('ConvTranspose', [dPre, w], {
    kernel_shape: l.kernel,
    strides: l.stride,
    pads: l.pads,
    output_padding: extra,
    group: l.group,
  });
}

/** dL/dW of a convolution. */
function convWeightGrad(
  g: GraphBuilder,
  l: ConvLayer,
  x: string,
  dPre: string,
  xs: Shape3,
  ys: Shape3,
  i64: Ints,
  batchSize?: number,
): string {
  const [kh, kw] = l.kernel;
  const [co, ci] = [l.outChannels, l.inChannels];
  const pointwise =
    kh === 1 && kw === 1 && l.group === 1 && l.stride.every((s) => s === 1) && l.pads.every((p) => p === 0);
  if (pointwise && co * ci > (co + ci) * ys[1] * ys[2]) {
    // Small maps, many channels: moving the batch next to the pixels costs less than N partial products.
    const flat = (t: string, c: number) =>
      g.op('Reshape', [
        g.op('Transpose', [g.op('Reshape', [t, i64(0, c, -1)])], { perm: [1, 0, 2] }),
        i64(c, -1),
      ]);
    return g.op('Reshape', [g.op('Gemm', [flat(dPre, co), flat(x, ci)], { transB: 1 }), i64(co, ci, 1, 1)]);
  }
  if (pointwise) {
    // Σₙ dY[n]·X[n]ᵀ as one batched MatMul.
    const xt = g.op('Transpose', [g.op('Reshape', [x, i64(0, ci, -1)])], { perm: [0, 2, 1] });
    const prod = g.op('MatMul', [g.op('Reshape', [dPre, i64(0, co, -1)]), xt]);
    return g.op('Reshape', [g.op('ReduceSum', [prod, i64(0)], { keepdims: 0 }), i64(co, ci, 1, 1)]);
  }
  const depthwise = l.group === ci && l.group === co;
  if (l.group !== 1 && !depthwise)
    throw new ModelError(`Conv ${l.name}: only group 1 or depthwise convolutions train.`, 'unsupported_op');
  // The GEMM form needs strided windows at stride 2, which ORT's Slice copies element by element: slower there.
  const gemm = l.stride.every((s) => s === 1);
  if (depthwise && batchSize !== undefined && gemm)
    return depthwiseWeightGradGemm(g, l, x, dPre, ys, i64, batchSize);
  // The batch becomes the channel axis: a convolution of X with dY as the kernel, dilated by the stride.
  const dyT = g.op('Transpose', [dPre], { perm: [1, 0, 2, 3] });
  const xT = g.op('Transpose', [x], { perm: [1, 0, 2, 3] });
  const attrs = { dilations: l.stride, pads: l.pads, kernel_shape: [ys[1], ys[2]] };
  let dw: string;
  if (depthwise) {
    // [1, C·N, H, W] with group C: channel c's N images meet dY's N maps of channel c.
    const xFlat = g.op('Reshape', [xT, i64(1, -1, xs[1], xs[2])]);
    dw = g.op('Conv', [xFlat, dyT], { ...attrs, group: co });
  } else {
    dw = g.op('Conv', [xT, dyT], attrs); // [Ci, Co, ≥kh, ≥kw]
  }
  const span = [0, 1].map((a) => xs[a + 1] + l.pads[a] + l.pads[a + 2] - (ys[a + 1] - 1) * l.stride[a]);
  if (span[0] !== kh || span[1] !== kw) dw = g.op('Slice', [dw, i64(0, 0), i64(kh, kw), i64(2, 3)]);
  return depthwise
    ? g.op('Reshape', [dw, i64(co, 1, kh, kw)])
    : g.op('Transpose', [dw], { perm: [1, 0, 2, 3] });
}

/**
 * Depthwise dW with a known batch N, without im2col: each (image, channel) pair is its own group whose kernel
 * (dY) spans the whole width of a strided window of the padded input, which ONNX Runtime runs as a direct
 * GEMM. One Conv per column tap b and row phase ρ (rows ρ, ρ+s, …) gives the taps a ≡ ρ (mod s).
 */
function depthwiseWeightGradGemm(
  g: GraphBuilder,
  l: ConvLayer,
  x: string,
  dPre: string,
  ys: Shape3,
  i64: Ints,
  n: number,
): string {
  const [kh, kw] = l.kernel;
  const [sh, sw] = l.stride;
  const c = l.outChannels;
  const [, ho, wo] = ys;
  const groups = n * c;
  const padded = l.pads.some((p) => p > 0)
    ? g.op('Pad', [x, i64(0, 0, l.pads[0], l.pads[1], 0, 0, l.pads[2], l.pads[3])])
    : x;
  const kernel = g.op('Reshape', [dPre, i64(groups, 1, ho, wo)]);
  const columns: string[] = [];
  const order: number[] = [];
  for (let b = 0; b < kw; b++) {
    const phases: string[] = [];
    for (let rho = 0; rho < Math.min(sh, kh); rho++) {
      const q = Math.ceil((kh - rho) / sh); // taps a = ρ + s·q′, q′ < q
      const rows = ho + q - 1;
      const window = g.op('Slice', [
        padded,
        i64(rho, b),
        i64(rho + sh * (rows - 1) + 1, b + sw * (wo - 1) + 1),
        i64(2, 3),
        i64(sh, sw),
      ]);
      const input = g.op('Reshape', [window, i64(1, groups, rows, wo)]);
      phases.push(g.op('Conv', [input, kernel], { group: groups })); // [1, N·C, q, 1]
      if (b === 0) for (let j = 0; j < q; j++) order.push(rho + sh * j);
    }
    columns.push(phases.length === 1 ? phases[0] : g.op('Concat', phases, { axis: 2 }));
  }
  let dw = columns.length === 1 ? columns[0] : g.op('Concat', columns, { axis: 3 }); // [1, N·C, kh, kw]
  if (order.some((a, i) => a !== i)) {
    const inverse = order.map((_, a) => order.indexOf(a));
    dw = g.op('Gather', [dw, i64(...inverse)], { axis: 2 });
  }
  const perImage = g.op('Reshape', [dw, i64(n, c, kh * kw)]);
  return g.op('Reshape', [g.op('ReduceSum', [perImage, i64(0)], { keepdims: 0 }), i64(c, 1, kh, kw)]);
}
