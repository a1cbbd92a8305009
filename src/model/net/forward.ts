/**
 * The forward pass of a NetSpec as ONNX: the one writer of it, for the imported backbone, fine-tuned exports
 * and the training graph (which adds the loss and backward pass around the same layers).
 */
import { ModelError } from '../../errors.js';
import { GraphBuilder } from '../onnx/graph-builder.js';
import {
  inferShapes,
  specParams,
  type ConvLayer,
  type HeadSpec,
  type NetSpec,
  type ParamInfo,
} from './spec.js';

/** Graph tensor names of every forward graph; classifier-graph's OUTPUTS reads the same ones. */
export const NET_IO = {
  input: 'input',
  features: 'features',
  featureMap: 'feature_map',
  logits: 'logits',
} as const;

/** One initializer per scalar value and graph, however many nodes read it. */
const scalars = new WeakMap<GraphBuilder, Map<number, string>>();
export function sharedScalar(g: GraphBuilder, value: number): string {
  let m = scalars.get(g);
  if (!m) scalars.set(g, (m = new Map()));
  let name = m.get(value);
  if (!name) m.set(value, (name = g.scalar('c', value)));
  return name;
}

export interface EmitOptions {
  /** Parameters fed as graph inputs (trainable); all others become initializers. */
  inputParams: Set<string>;
  /** Spec tensors that are already graph tensors (the image, or the outputs of a frozen prefix). */
  given: Map<string, string>;
  /** Layers to write; the rest must be reachable through `given`. */
  layers: ConvLayer['name'][] | null;
}

export interface Emitted {
  /** spec tensor → graph tensor */
  tensors: Map<string, string>;
  /** param name → graph tensor */
  params: Map<string, string>;
}

/** Writes the forward pass of the chosen layers: Conv (+Clip) and Add, nothing else. */
export function emitLayers(g: GraphBuilder, spec: NetSpec, params: ParamInfo[], o: EmitOptions): Emitted {
  const tensors = new Map(o.given);
  const byName = new Map(params.map((p) => [p.name, p]));
  const paramTensors = new Map<string, string>();
  const param = (name: string) => {
    const p = byName.get(name)!;
    let t = paramTensors.get(name);
    if (!t) {
      t = o.inputParams.has(name) ? g.input(name, p.dims) : g.constant(name, p.data, p.dims);
      paramTensors.set(name, t);
    }
    return t;
  };
  const get = (name: string) => {
    const t = tensors.get(name);
    if (!t) throw new ModelError(`Tensor ${name} is needed but not computed.`, 'bad_spec');
    return t;
  };
  const wanted = o.layers ? new Set(o.layers) : null;
  for (const l of spec.layers) {
    if (wanted && !wanted.has(l.name)) continue;
    g.nodeScope = `fw/${l.name}/`;
    if (l.kind === 'add') {
      tensors.set(l.name, g.op('Add', [get(l.inputs[0]), get(l.inputs[1])], {}, g.fresh(l.name)));
      continue;
    }
    const y = g.op(
      'Conv',
      [get(l.input), param(`${l.name}/W`), param(`${l.name}/B`)],
      { kernel_shape: l.kernel, strides: l.stride, pads: l.pads, group: l.group, dilations: [1, 1] },
      g.fresh(l.relu6 ? `${l.name}/preact` : l.name),
    );
    tensors.set(
      l.name,
      l.relu6 ? g.op('Clip', [y, sharedScalar(g, 0), sharedScalar(g, 6)], {}, g.fresh(l.name)) : y,
    );
  }
  g.nodeScope = '';
  return { tensors, params: paramTensors };
}

/** Global average pooling to [N, C]. */
export const pool = (g: GraphBuilder, x: string, name: string): string =>
  g.op('Flatten', [g.op('GlobalAveragePool', [x])], { axis: 1 }, g.fresh(name));

export interface InferenceGraphOptions {
  /**
   * Include the Gemm head and its `logits` output (default). Without it the model is a backbone (features,
   * feature_map) that buildClassifierModel can put a head on, given backboneMetadata in `metadata`.
   */
  head?: boolean;
  /**
   * A second classifier outside the spec, written as `output` = softmax(Gemm(pooled `layer`)): the ImageNet
   * head of an imported file, kept so an import can be checked end to end on a photo.
   */
  softmaxHead?: { output: string; layer: string; head: HeadSpec };
  metadata?: Record<string, string>;
  doc?: string;
  /**
   * Parameters (by specParams name) fed as graph inputs instead of baked in, so one session follows weights
   * that change between runs (validation during fine-tuning).
   */
  paramInputs?: string[];
}

/**
 * The forward model of a spec with every weight baked in: input [N,C,H,W] → features [N,d], logits [N,k],
 * feature_map (the last layer's output).
 */
export function buildInferenceGraph(spec: NetSpec, options: InferenceGraphOptions = {}): Uint8Array {
  const shapes = inferShapes(spec);
  const withHead = options.head ?? true;
  if (withHead && spec.head.classes < 1)
    throw new ModelError(`${spec.name} has no head: build it with head: false.`, 'bad_spec');
  const g = new GraphBuilder(`${spec.name}_inference`);
  const { channels, height, width } = spec.input;
  const input = g.input(NET_IO.input, ['N', channels, height, width]);
  const fed = new Set(options.paramInputs ?? []);
  const e = emitLayers(g, spec, specParams(spec), {
    inputParams: fed,
    given: new Map([[spec.input.name, input]]),
    layers: null,
  });
  const d = spec.features.reduce((a, f) => a + shapes.get(f)![0], 0);
  const pooled = new Map(spec.features.map((f) => [f, pool(g, e.tensors.get(f)!, `${f}/pooled`)]));
  const features =
    pooled.size === 1
      ? g.op('Identity', [...pooled.values()], {}, NET_IO.features)
      : g.op('Concat', [...pooled.values()], { axis: 1 }, NET_IO.features);
  const last = spec.layers[spec.layers.length - 1];
  g.op('Identity', [e.tensors.get(last.name)!], {}, NET_IO.featureMap);
  g.output(NET_IO.features, ['N', d]);
  if (withHead) {
    const k = spec.head.classes;
    const w = fed.has('head/W') ? g.input('head/W', [k, d]) : g.constant('head/W', spec.head.weight, [k, d]);
    const b = fed.has('head/B') ? g.input('head/B', [k]) : g.constant('head/B', spec.head.bias, [k]);
    g.op('Gemm', [features, w, b], { transB: 1 }, NET_IO.logits);
    g.output(NET_IO.logits, ['N', k]);
  }
  g.output(NET_IO.featureMap, ['N', ...shapes.get(last.name)!]);
  const extra = options.softmaxHead;
  if (extra) {
    const x = e.tensors.get(extra.layer);
    const c = shapes.get(extra.layer)?.[0] ?? 0;
    const { weight, bias, classes } = extra.head;
    if (!x || classes < 1 || weight.length !== classes * c || bias.length !== classes)
      throw new ModelError(`The ${extra.output} head does not fit layer ${extra.layer}.`, 'bad_spec');
    const w = g.constant(`${extra.output}/W`, weight, [classes, c]);
    const b = g.constant(`${extra.output}/B`, bias, [classes]);
    const logits = g.op('Gemm', [pooled.get(extra.layer) ?? pool(g, x, `${extra.layer}/pooled`), w, b], {
      transB: 1,
    });
    g.op('Softmax', [logits], { axis: 1 }, extra.output);
    g.output(extra.output, ['N', classes]);
  }
  return g.toBytes({ doc: options.doc, metadata: options.metadata });
}
