/**
 * Static int8 quantization of a float ONNX model in QDQ form: QuantizeLinear/DequantizeLinear pairs around
 * Conv and Gemm, which ONNX Runtime's CPU provider fuses into int8 kernels (QLinearConv, QGemm, QLinearAdd).
 * Weights are int8, symmetric, one scale per output channel; biases int32 at the scale their product has;
 * activations one scale and zero point per tensor, from ranges measured on calibration inputs
 * (`calibrate.ts`). A pure graph transform: nothing here runs a model.
 */
import onnxProto from 'onnx-proto';
import { attribute, DType, tensorProto } from './graph-builder.js';

const { onnx } = onnxProto;
type Model = InstanceType<typeof onnx.ModelProto>;
type Node = onnxProto.onnx.INodeProto;
type Tensor = onnxProto.onnx.ITensorProto;

/** The integer type of quantized activations (weights are always int8). */
export type ActivationType = 'uint8' | 'int8';

/** A tensor's calibrated range of values. */
export interface Range {
  min: number;
  max: number;
}

export interface QuantizeOptions {
  activations: ActivationType;
  /** Nodes whose name starts with one of these stay float (with their weights). */
  keepFloat?: string[];
  /**
   * Activations kept exact: never quantized, so the Conv/Gemm nodes that read or write them stay float too
   * (features whose small values matter, such as those the familiarity distances pool).
   */
  floatTensors?: string[];
}

/** What quantization will touch: the activation tensors whose ranges calibration must measure. */
export interface QuantizationPlan {
  /** Conv/Gemm nodes whose weights become int8. */
  nodes: string[];
  /** Activation tensors that get a QuantizeLinear/DequantizeLinear pair (graph inputs included). */
  tensors: string[];
  /** Clip nodes (ReLU6) that the quantized range makes redundant, by the tensor they output. */
  clips: Map<string, { min: number; max: number }>;
}

export interface QuantizeResult {
  bytes: Uint8Array;
  /** Per quantized activation: scale and zero point. */
  activations: Record<string, { scale: number; zeroPoint: number }>;
  /** Nodes quantized, by op type, and the ReLU6 clips folded into the quantization. */
  counts: { conv: number; gemm: number; add: number; clipsFolded: number; tensors: number };
}

const isQuantizable = (n: Node, inits: Map<string, Tensor>, keep: string[]) =>
  (n.opType === 'Conv' || n.opType === 'Gemm') &&
  inits.get(n.input?.[1] ?? '')?.dataType === DType.float &&
  !keep.some((p) => (n.name ?? '').startsWith(p));

function floatOf(t: Tensor): Float32Array {
  if (t.rawData && t.rawData.byteLength > 0) return new Float32Array(new Uint8Array(t.rawData).buffer);
  return Float32Array.from(t.floatData ?? []);
}

/** The scalar value of a float initializer, or undefined. */
function scalarOf(name: string | undefined, inits: Map<string, Tensor>): number | undefined {
  const t = name ? inits.get(name) : undefined;
  if (!t || t.dataType !== DType.float) return undefined;
  const v = floatOf(t);
  return v.length === 1 ? v[0] : undefined;
}

/**
 * Which tensors quantization wraps: the activation input and output of every quantizable Conv/Gemm (the
 * output taken after a ReLU6 Clip that is its only consumer, so the Clip folds into the quantization), and
 * the output of every Add whose inputs are all quantized (residual connections).
 */
export function planQuantization(
  bytes: Uint8Array,
  keepFloat: string[] = [],
  floatTensors: string[] = [],
): QuantizationPlan {
  const exact = new Set(floatTensors);
  const graph = onnx.ModelProto.decode(bytes).graph!;
  const inits = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const consumers = new Map<string, Node[]>();
  for (const n of graph.node ?? [])
    for (const i of n.input ?? []) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  const outputs = new Set((graph.output ?? []).map((o) => o.name ?? ''));
  const nodes: string[] = [];
  const tensors = new Set<string>();
  const clips: QuantizationPlan['clips'] = new Map();
  for (const n of graph.node ?? []) {
    if (isQuantizable(n, inits, keepFloat) && !exact.has(n.input![0])) {
      const y = n.output![0];
      const after = consumers.get(y) ?? [];
      const clip = after.length === 1 && !outputs.has(y) ? after[0] : undefined;
      const min = scalarOf(clip?.input?.[1], inits);
      const max = scalarOf(clip?.input?.[2], inits);
      const folds = clip?.opType === 'Clip' && min !== undefined && max !== undefined;
      const out = folds ? clip!.output![0] : y;
      if (exact.has(out)) continue;
      nodes.push(n.name ?? '');
      tensors.add(n.input![0]);
      tensors.add(out);
      if (folds) clips.set(out, { min: min!, max: max! });
    } else if (
      n.opType === 'Add' &&
      !exact.has(n.output![0]) &&
      (n.input ?? []).every((i) => tensors.has(i))
    ) {
      tensors.add(n.output![0]);
    }
  }
  return { nodes, tensors: [...tensors], clips };
}

/** A copy of the model that also outputs `tensors` (float), for calibration. */
export function withOutputs(bytes: Uint8Array, tensors: string[]): Uint8Array {
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph!;
  const have = new Set([
    ...(graph.output ?? []).map((o) => o.name),
    ...(graph.input ?? []).map((i) => i.name),
  ]);
  for (const name of tensors) {
    if (have.has(name)) continue;
    graph.output!.push(onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: DType.float } } }));
  }
  return onnx.ModelProto.encode(model).finish();
}

/** Scale and zero point covering `range` (widened to hold 0, so zero padding is exact). */
export function activationParams(range: Range, type: ActivationType): { scale: number; zeroPoint: number } {
  const lo = Math.min(0, range.min);
  const hi = Math.max(0, range.max);
  if (!Number.isFinite(lo) || !Number.isFinite(hi))
    throw new Error(`Range [${range.min}, ${range.max}] is not finite.`);
  const scale = hi > lo ? (hi - lo) / 255 : 1;
  const [qmin, qmax] = type === 'uint8' ? [0, 255] : [-128, 127];
  const zeroPoint = Math.max(qmin, Math.min(qmax, Math.round(qmin - lo / scale)));
  return { scale, zeroPoint };
}

/** Symmetric int8 weights, one scale per slice along `axis` (the output channel). */
export function quantizeWeights(
  w: Float32Array,
  dims: number[],
  axis: number,
): { q: Int8Array; scales: Float32Array } {
  const channels = dims[axis];
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const at = (o: number, c: number, i: number) => (o * channels + c) * inner + i;
  const scales = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    let m = 0;
    for (let o = 0; o < outer; o++) for (let i = 0; i < inner; i++) m = Math.max(m, Math.abs(w[at(o, c, i)]));
    // −127…127, not −128: the range stays symmetric, so the zero point is 0 (what int8 kernels expect).
    scales[c] = m > 0 ? m / 127 : 1;
  }
  const q = new Int8Array(w.length);
  for (let o = 0; o < outer; o++)
    for (let c = 0; c < channels; c++)
      for (let i = 0; i < inner; i++) {
        const j = at(o, c, i);
        q[j] = Math.max(-127, Math.min(127, Math.round(w[j] / scales[c])));
      }
  return { q, scales };
}

/**
 * The model in QDQ form, given the calibrated range of every tensor in `planQuantization(bytes).tensors`.
 * A ReLU6 Clip is dropped where the quantized range already lies within [min, max] of the Clip (then
 * quantizing saturates exactly as the Clip did); otherwise it stays, after its own quantization.
 */
export function quantizeModel(
  bytes: Uint8Array,
  ranges: Map<string, Range>,
  options: QuantizeOptions,
): QuantizeResult {
  const plan = planQuantization(bytes, options.keepFloat, options.floatTensors);
  const model: Model = onnx.ModelProto.decode(bytes);
  const graph = model.graph!;
  const inits = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const graphInputs = new Set((graph.input ?? []).map((i) => i.name ?? ''));
  const newInits: Tensor[] = [];
  const head: Node[] = [];
  let counter = 0;
  const nodeName = (op: string, t: string) => `quant/${op}/${t}/${counter++}`;
  const node = (opType: string, input: string[], output: string[], name: string, axis?: number) =>
    onnx.NodeProto.create({
      opType,
      input,
      output,
      name,
      attribute: axis === undefined ? [] : [attribute('axis', axis)],
    });

  // Activation parameters, and which clips fold into them.
  const params = new Map<string, { scale: number; zeroPoint: number }>();
  // By the clip's output (the plan decoded its own copy of the graph).
  const folded = new Set<string>();
  for (const t of plan.tensors) {
    const r = ranges.get(t);
    if (!r) throw new Error(`No calibrated range for tensor '${t}'.`);
    const clip = plan.clips.get(t);
    const p = activationParams(
      clip ? { min: Math.max(r.min, clip.min), max: Math.min(r.max, clip.max) } : r,
      options.activations,
    );
    params.set(t, p);
    if (clip) {
      const qmin = options.activations === 'uint8' ? 0 : -128;
      const lo = (qmin - p.zeroPoint) * p.scale;
      const hi = (qmin + 255 - p.zeroPoint) * p.scale;
      const eps = 1e-6 * Math.max(1, Math.abs(clip.max));
      if (lo >= clip.min - eps && hi <= clip.max + eps) folded.add(t);
    }
  }
  const qType = options.activations === 'uint8' ? Uint8Array : Int8Array;
  const qdq = new Map<string, { scale: string; zp: string }>();
  for (const [t, p] of params) {
    const scale = `${t}/quant/scale`;
    const zp = `${t}/quant/zero_point`;
    newInits.push(
      tensorProto(scale, Float32Array.of(p.scale), []),
      tensorProto(zp, qType.of(p.zeroPoint), []),
    );
    qdq.set(t, { scale, zp });
  }

  // Every tensor's float source: where its QuantizeLinear reads from.
  const source = new Map<string, string>();
  const rename = new Map<string, string>();
  for (const t of params.keys()) {
    if (graphInputs.has(t)) {
      // A graph input keeps its name: its consumers read the dequantized copy instead.
      rename.set(t, `${t}/dq`);
      continue;
    }
    source.set(t, `${t}/float`);
  }
  const emitQdq = (t: string, from: string, into: Node[]) => {
    const { scale, zp } = qdq.get(t)!;
    const to = rename.get(t) ?? t;
    into.push(node('QuantizeLinear', [from, scale, zp], [`${t}/q`], nodeName('Q', t)));
    into.push(node('DequantizeLinear', [`${t}/q`, scale, zp], [to], nodeName('DQ', t)));
  };
  for (const t of params.keys()) if (graphInputs.has(t)) emitQdq(t, t, head);

  // Weights (int8 per output channel) and biases (int32 at input scale × weight scale), dequantized in-graph.
  const quantNodes = new Set(plan.nodes);
  const counts = { conv: 0, gemm: 0, add: 0, clipsFolded: folded.size, tensors: params.size };
  const replaced = new Set<string>();
  for (const n of graph.node ?? []) {
    if (!quantNodes.has(n.name ?? '')) continue;
    const wName = n.input![1];
    const w = inits.get(wName)!;
    const dims = (w.dims ?? []).map(Number);
    const transB = n.attribute?.find((a) => a.name === 'transB')?.i;
    const axis = n.opType === 'Gemm' && !Number(transB ?? 0) ? 1 : 0;
    const { q, scales } = quantizeWeights(floatOf(w), dims, axis);
    const suffix = n.name!;
    const wq = `${wName}/int8`;
    if (!replaced.has(wName))
      newInits.push(
        tensorProto(wq, q, dims),
        tensorProto(`${wName}/scale`, scales, [scales.length]),
        tensorProto(`${wName}/zero_point`, new Int8Array(scales.length), [scales.length]),
      );
    const wOut = `${wName}/dq/${suffix}`;
    head.push(
      node(
        'DequantizeLinear',
        [wq, `${wName}/scale`, `${wName}/zero_point`],
        [wOut],
        nodeName('DQw', wName),
        axis,
      ),
    );
    replaced.add(wName);
    n.input![1] = wOut;
    const bName = n.input![2];
    if (bName && inits.get(bName)?.dataType === DType.float) {
      const b = floatOf(inits.get(bName)!);
      const xs = params.get(n.input![0])!.scale;
      const bs = Float32Array.from(scales, (s) => s * xs);
      const bq = Int32Array.from(b, (v, c) =>
        Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, Math.round(v / bs[c]))),
      );
      newInits.push(
        tensorProto(`${bName}/int32/${suffix}`, bq, [bq.length]),
        tensorProto(`${bName}/scale/${suffix}`, bs, [bs.length]),
        tensorProto(`${bName}/zero_point/${suffix}`, new Int32Array(bq.length), [bq.length]),
      );
      const bOut = `${bName}/dq/${suffix}`;
      head.push(
        node(
          'DequantizeLinear',
          [`${bName}/int32/${suffix}`, `${bName}/scale/${suffix}`, `${bName}/zero_point/${suffix}`],
          [bOut],
          nodeName('DQb', bName),
          0,
        ),
      );
      replaced.add(bName);
      n.input![2] = bOut;
    }
    if (n.opType === 'Conv') counts.conv++;
    else counts.gemm++;
  }

  // The nodes in order, each quantized output followed by its pair; folded clips dropped.
  const body: Node[] = [];
  for (const n of graph.node ?? []) {
    n.input = (n.input ?? []).map((i) => rename.get(i) ?? i);
    if (n.opType === 'Clip' && folded.has(n.output?.[0] ?? '')) {
      // The clip's input now feeds the quantization of the clip's output directly.
      emitQdq(n.output![0], n.input[0], body);
      continue;
    }
    if (n.opType === 'Add' && params.has(n.output?.[0] ?? '')) counts.add++;
    const pending: string[] = [];
    n.output = (n.output ?? []).map((o) => {
      if (!source.has(o)) return o;
      pending.push(o);
      return source.get(o)!;
    });
    body.push(n);
    for (const o of pending) emitQdq(o, source.get(o)!, body);
  }
  graph.node = [...head, ...body];
  // Folded clips leave their bounds unread; ONNX Runtime warns of unused initializers, so they go.
  const read = new Set(graph.node.flatMap((n) => n.input ?? []));
  graph.initializer = [...(graph.initializer ?? []), ...newInits].filter(
    (t) => !replaced.has(t.name ?? '') && read.has(t.name ?? ''),
  );
  // Shapes recorded for float tensors that are now renamed would be stale.
  graph.valueInfo = [];
  return {
    bytes: onnx.ModelProto.encode(model).finish(),
    activations: Object.fromEntries(params),
    counts,
  };
}
