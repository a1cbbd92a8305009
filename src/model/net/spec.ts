import { ModelError } from '../../errors.js';

/**
 * A network as data: the one description that the inference graph (the imported backbone included), the
 * training graph and the float64 reference are all generated from, so they cannot drift apart.
 */
export interface ConvLayer {
  kind: 'conv';
  /** Also the name of its output tensor; parameters are `${name}/W` and `${name}/B`. */
  name: string;
  input: string;
  /** [outChannels, inChannels/group, kh, kw], row-major (ONNX OIHW). */
  weight: Float32Array;
  bias: Float32Array;
  outChannels: number;
  inChannels: number;
  kernel: [number, number];
  stride: [number, number];
  /** ONNX order [top, left, bottom, right]; TFLite SAME puts the odd pixel after. */
  pads: [number, number, number, number];
  group: number;
  relu6: boolean;
  /** Freezing unit: layers with block < trainFromBlock are frozen. */
  block: number;
}

export interface AddLayer {
  kind: 'add';
  name: string;
  inputs: [string, string];
  block: number;
}

export type Layer = ConvLayer | AddLayer;

/**
 * Gemm on the concatenated global-average-pooled `features`: logits = f·Wᵀ + b. Zero classes (empty arrays)
 * make a backbone without a head, which only inference graphs with `head: false` accept.
 */
export interface HeadSpec {
  /** k×d, row-major */
  weight: Float32Array;
  bias: Float32Array;
  classes: number;
}

export interface NetSpec {
  name: string;
  /** The image tensor [N, channels, height, width]. */
  input: { name: string; channels: number; height: number; width: number };
  /** In topological order. */
  layers: Layer[];
  /** Layers whose pooled outputs are concatenated (in this order) into the head's input. */
  features: string[];
  head: HeadSpec;
}

export type ParamKind = 'conv' | 'depthwise' | 'bias' | 'head_weight';

/** One weight tensor of a spec, as the training graph and the optimizer see it. */
export interface ParamInfo {
  name: string;
  dims: number[];
  kind: ParamKind;
  block: number;
  /** The live array inside the spec (not a copy). */
  data: Float32Array;
}

/** Block number of the head: past every layer, so trainFromBlock = HEAD_BLOCK trains the head only. */
export const HEAD_BLOCK = 1000;

/** [channels, height, width] of every tensor in the spec, checking the layers fit together. */
export function inferShapes(spec: NetSpec): Map<string, [number, number, number]> {
  const shapes = new Map<string, [number, number, number]>([
    [spec.input.name, [spec.input.channels, spec.input.height, spec.input.width]],
  ]);
  const get = (name: string, by: string) => {
    const s = shapes.get(name);
    if (!s) throw new ModelError(`Layer ${by} reads ${name}, which no earlier layer produces.`, 'bad_spec');
    return s;
  };
  for (const l of spec.layers) {
    if (shapes.has(l.name)) throw new ModelError(`Two tensors are named ${l.name}.`, 'bad_spec');
    if (l.kind === 'add') {
      const [a, b] = l.inputs.map((i) => get(i, l.name));
      if (a.join() !== b.join()) throw new ModelError(`Add ${l.name} joins [${a}] and [${b}].`, 'bad_spec');
      shapes.set(l.name, a);
      continue;
    }
    const [c, h, w] = get(l.input, l.name);
    const [kh, kw] = l.kernel;
    if (c !== l.inChannels || l.inChannels % l.group !== 0 || l.outChannels % l.group !== 0) {
      throw new ModelError(`Conv ${l.name}: ${c} input channels do not fit its weights.`, 'bad_spec');
    }
    if (
      l.weight.length !== (l.outChannels * l.inChannels * kh * kw) / l.group ||
      l.bias.length !== l.outChannels
    ) {
      throw new ModelError(`Conv ${l.name}: weight or bias has the wrong length.`, 'bad_spec');
    }
    const ho = Math.floor((h + l.pads[0] + l.pads[2] - kh) / l.stride[0]) + 1;
    const wo = Math.floor((w + l.pads[1] + l.pads[3] - kw) / l.stride[1]) + 1;
    if (ho < 1 || wo < 1) throw new ModelError(`Conv ${l.name} has an empty output.`, 'bad_spec');
    shapes.set(l.name, [l.outChannels, ho, wo]);
  }
  for (const f of spec.features) get(f, 'features');
  const d = featureDim(spec, shapes);
  if (spec.head.weight.length !== spec.head.classes * d || spec.head.bias.length !== spec.head.classes) {
    throw new ModelError(`The head must be ${spec.head.classes}×${d}.`, 'bad_spec');
  }
  return shapes;
}

export function featureDim(spec: NetSpec, shapes = inferShapes(spec)): number {
  return spec.features.reduce((a, f) => a + shapes.get(f)![0], 0);
}

/** Every weight tensor of the spec, layers first, head (if any) last. */
export function specParams(spec: NetSpec): ParamInfo[] {
  const out: ParamInfo[] = [];
  for (const l of spec.layers) {
    if (l.kind !== 'conv') continue;
    const depthwise = l.group > 1 && l.group === l.inChannels && l.group === l.outChannels;
    out.push({
      name: `${l.name}/W`,
      dims: [l.outChannels, l.inChannels / l.group, ...l.kernel],
      kind: depthwise ? 'depthwise' : 'conv',
      block: l.block,
      data: l.weight,
    });
    out.push({ name: `${l.name}/B`, dims: [l.outChannels], kind: 'bias', block: l.block, data: l.bias });
  }
  const { weight, bias, classes } = spec.head;
  if (classes === 0) return out;
  out.push({
    name: 'head/W',
    dims: [classes, weight.length / classes],
    kind: 'head_weight',
    block: HEAD_BLOCK,
    data: weight,
  });
  out.push({ name: 'head/B', dims: [classes], kind: 'bias', block: HEAD_BLOCK, data: bias });
  return out;
}

/** A deep copy, e.g. to keep the pretrained weights while a copy is fine-tuned. */
export function cloneSpec(spec: NetSpec): NetSpec {
  return {
    ...spec,
    input: { ...spec.input },
    layers: spec.layers.map((l) =>
      l.kind === 'conv'
        ? { ...l, weight: l.weight.slice(), bias: l.bias.slice() }
        : { ...l, inputs: [...l.inputs] },
    ),
    features: [...spec.features],
    head: { ...spec.head, weight: spec.head.weight.slice(), bias: spec.head.bias.slice() },
  };
}
