/**
 * MobileNetV2 from the TFLite file: its layers read into a NetSpec (shared with fine-tuning), and the backbone
 * model every classifier is built on, written from that spec by net/forward.
 */
import { ModelError } from '../errors.js';
import { readFloatInitializers, readMetadata } from './onnx/graph-builder.js';
import { buildInferenceGraph } from './net/forward.js';
import { inferShapes, type HeadSpec, type Layer, type NetSpec } from './net/spec.js';
import { dequantize, Op, readTflite, type TfliteGraph } from './tflite/read.js';

/** sha256 of ../shared/weights/mobilenet_v2_1.0_224_quant.tflite, the backbone we ship models on. */
export const MOBILENET_V2_SHA256 = '7aad0c74c5e3c06e5eb3c827e13304fdd68a83da6087d92ee169c24ff9fd4776';

/**
 * Blocks whose pooled outputs form the feature vector. Mixing depths beat the last layer alone on PBC
 * (0.984 vs 0.952): early expansions keep colour and texture that the ImageNet-tuned top discards.
 */
export const DEFAULT_FEATURE_BLOCKS = [
  'expanded_conv_3/expand',
  'expanded_conv_6/expand',
  'expanded_conv_13/expand',
  'Conv_1',
];

export const BACKBONE_ATTRIBUTION =
  'Backbone: MobileNetV2 (alpha 1.0, 224x224), ImageNet-pretrained, from the google-coral/test_data repository, ' +
  'Copyright Google LLC, licensed under the Apache License 2.0. Converted to float32 ONNX by HematoVision.';

export const INPUT_SIZE = 224;
/** Bump when the imported graph changes numerically; feature caches key on it. */
export const IMPORTER_VERSION = 1;

export interface BackboneOptions {
  featureBlocks?: string[];
  includeImagenetHead?: boolean;
  /** Check the file against MOBILENET_V2_SHA256 (on by default). */
  verifySha256?: boolean;
}

/** Parses the TFLite file and checks it is the MobileNetV2 we expect. */
export function loadTfliteBackbone(bytes: Uint8Array, verify = true): TfliteGraph {
  const graph = readTflite(bytes);
  if (verify && graph.sha256 !== MOBILENET_V2_SHA256) {
    throw new ModelError(
      `The TFLite file's sha256 is ${graph.sha256}, not the MobileNetV2 HematoVision expects ` +
        `(${MOBILENET_V2_SHA256}). Pass the file from shared/weights, or disable the check knowingly.`,
      'sha256_mismatch',
    );
  }
  const input = graph.tensors[graph.inputs[0]];
  if (input.shape.join(',') !== `1,${INPUT_SIZE},${INPUT_SIZE},3`) {
    throw new ModelError(`Unexpected backbone input shape [${input.shape}].`, 'bad_tflite');
  }
  return graph;
}

/**
 * MobileNetV2 block number from a TFLite layer name: the stem `Conv` and `expanded_conv` are 0,
 * `expanded_conv_K` is K, the last 1×1 `Conv_1` is 17.
 */
export function mobileNetV2Block(name: string): number {
  if (name === 'Conv' || name.startsWith('Conv/')) return 0;
  if (name === 'Conv_1' || name.startsWith('Conv_1/')) return 17;
  const m = /^expanded_conv(?:_(\d+))?(?:\/|$)/.exec(name);
  if (!m) throw new ModelError(`Cannot tell the MobileNetV2 block of layer ${name}.`, 'bad_tflite');
  return m[1] ? Number(m[1]) : 0;
}

export interface MobileNetV2SpecOptions {
  /**
   * Pooled blocks feeding the head; DEFAULT_FEATURE_BLOCKS (2192 features) unless given. Keeping the shipped
   * layout means the trained RawLinearHead (standardisation folded in) can seed `head`, and a fine-tuned
   * backbone goes through buildClassifierModel unchanged. Frozen taps cost nothing in the backward pass.
   */
  featureBlocks?: string[];
  /** Head to start from (k×d, e.g. the shipped RawLinearHead's weight and bias); otherwise zeros. */
  head?: HeadSpec;
  /** Classes of a zero head; 0 (the default without `head`) gives a backbone with no head. */
  classes?: number;
}

/**
 * Reads the float32 MobileNetV2 layers out of the (already verified) TFLite graph as NCHW: OIHW weights,
 * TFLite's asymmetric SAME pads, BatchNorm already folded into the convolutions. Stops before the ImageNet
 * head (see imagenetHead). The input is [N,3,224,224] pixels mapped to (p − 128)/128, the TFLite input
 * quantization.
 */
export function mobileNetV2Spec(tfl: TfliteGraph, options: MobileNetV2SpecOptions = {}): NetSpec {
  const layers: Layer[] = [];
  const names = new Map<number, string>([[tfl.inputs[0], 'input']]);
  const nameOf = producedName(tfl, names);
  for (const op of tfl.ops) {
    const out = tfl.tensors[op.outputs[0]];
    const short = layerName(out.name);
    if (op.code === Op.AVERAGE_POOL_2D || short.startsWith('Logits')) break;
    if (op.code === Op.CONV_2D || op.code === Op.DEPTHWISE_CONV_2D) {
      const x = tfl.tensors[op.inputs[0]];
      const w = tfl.tensors[op.inputs[1]];
      const depthwise = op.code === Op.DEPTHWISE_CONV_2D;
      const [a, kh, kw, c] = w.shape; // conv: [O,H,W,I]; depthwise: [1,H,W,C]
      const p = op.conv!;
      if (p.dilationH !== 1 || p.dilationW !== 1)
        throw new ModelError('Dilated convolutions are not supported.', 'unsupported_op');
      const [pt, pb] = samePads(x.shape[1], kh, p.strideH, p.padding);
      const [pl, pr] = samePads(x.shape[2], kw, p.strideW, p.padding);
      layers.push({
        kind: 'conv',
        name: short,
        input: nameOf(op.inputs[0]),
        weight: depthwise ? hwcToChw(dequantize(w), kh, kw, c) : ohwiToOihw(dequantize(w), a, kh, kw, c),
        bias: dequantize(tfl.tensors[op.inputs[2]]),
        outChannels: depthwise ? c : a,
        inChannels: x.shape[3],
        kernel: [kh, kw],
        stride: [p.strideH, p.strideW],
        pads: [pt, pl, pb, pr],
        group: depthwise ? c : 1,
        relu6: p.relu6,
        block: mobileNetV2Block(short),
      });
    } else if (op.code === Op.ADD) {
      layers.push({
        kind: 'add',
        name: short,
        inputs: [nameOf(op.inputs[0]), nameOf(op.inputs[1])],
        block: mobileNetV2Block(short),
      });
    } else {
      throw new ModelError(`Unsupported TFLite operator code ${op.code} in the backbone.`, 'unsupported_op');
    }
    names.set(op.outputs[0], short);
  }
  const features = options.featureBlocks ?? DEFAULT_FEATURE_BLOCKS;
  const missing = features.filter((f) => !layers.some((l) => l.name === f));
  if (missing.length > 0)
    throw new ModelError(`Feature blocks not found in the backbone: ${missing.join(', ')}.`, 'bad_tflite');
  const spec: NetSpec = {
    name: 'mobilenet_v2',
    input: { name: 'input', channels: 3, height: INPUT_SIZE, width: INPUT_SIZE },
    layers,
    features,
    head: { weight: new Float32Array(0), bias: new Float32Array(0), classes: 0 },
  };
  const k = options.head?.classes ?? options.classes ?? 0;
  const shapes = inferShapes(spec);
  const d = features.reduce((s, f) => s + shapes.get(f)![0], 0);
  spec.head = options.head ?? { weight: new Float32Array(k * d), bias: new Float32Array(k), classes: k };
  inferShapes(spec);
  return spec;
}

/**
 * The file's own ImageNet classifier, after the layers mobileNetV2Spec reads: global average pooling of the
 * last layer, then a 1×1 conv to 1001 classes (a Gemm on the pooled vector) and softmax.
 */
export function imagenetHead(tfl: TfliteGraph): { layer: string; head: HeadSpec } {
  const at = tfl.ops.findIndex((op) => op.code === Op.AVERAGE_POOL_2D);
  const [pool, conv] = [tfl.ops[at], tfl.ops[at + 1]];
  const x = pool && tfl.tensors[pool.inputs[0]];
  const w = conv && tfl.tensors[conv.inputs[1]];
  const global = x && pool.conv?.filterH === x.shape[1] && pool.conv?.filterW === x.shape[2];
  const pointwise =
    w && conv.code === Op.CONV_2D && w.shape[1] === 1 && w.shape[2] === 1 && !conv.conv?.relu6;
  if (!global || !pointwise || tfl.ops[tfl.ops.length - 1].code !== Op.SOFTMAX)
    throw new ModelError('The ImageNet head is not pool → 1×1 conv → softmax.', 'unsupported_op');
  const classes = w.shape[0];
  return {
    layer: layerName(x.name),
    // [O,1,1,I] is already the k×d row-major Gemm weight.
    head: { weight: dequantize(w), bias: dequantize(tfl.tensors[conv.inputs[2]]), classes },
  };
}

/** The MobileNetV2 layer a TFLite tensor belongs to: 'MobilenetV2/expanded_conv_3/expand/Relu6' → 'expanded_conv_3/expand'. */
function layerName(tensorName: string): string {
  return tensorName.replace(/^MobilenetV2\//, '').replace(/\/(Relu6|add_fold|BiasAdd|Conv2D.*)$/, '');
}

/** Looks up the layer name given to a TFLite tensor, failing clearly when the graph uses it before producing it. */
function producedName(tfl: TfliteGraph, names: Map<number, string>): (i: number) => string {
  return (i) => {
    const n = names.get(i);
    if (!n)
      throw new ModelError(
        `TFLite tensor ${tfl.tensors[i].name} is used before it is produced.`,
        'bad_tflite',
      );
    return n;
  };
}

/**
 * A standalone backbone ONNX model: input → features (pooled feature blocks), feature_map (the last layer,
 * for heat maps), and with includeImagenetHead the file's 1001 ImageNet probabilities.
 */
export function buildBackboneModel(tflite: Uint8Array, options: BackboneOptions = {}): Uint8Array {
  const tfl = loadTfliteBackbone(tflite, options.verifySha256 ?? true);
  const spec = mobileNetV2Spec(tfl, { featureBlocks: options.featureBlocks });
  const shapes = inferShapes(spec);
  const imagenet = options.includeImagenetHead ? imagenetHead(tfl) : undefined;
  return buildInferenceGraph(spec, {
    head: false,
    softmaxHead: imagenet && { output: 'imagenet_probabilities', ...imagenet },
    doc: BACKBONE_ATTRIBUTION,
    metadata: backboneMetadata(
      tfl.sha256,
      spec.features,
      spec.features.map((f) => shapes.get(f)![0]),
    ),
  });
}

/** Identifies the feature extractor inside any model we write: a feature cache keys on `backboneId`. */
export function backboneMetadata(sha256: string, blocks: string[], dims: number[]): Record<string, string> {
  return {
    'hematovision.backbone_sha256': sha256,
    'hematovision.feature_blocks': blocks.join(','),
    'hematovision.feature_dims': dims.join(','),
    'hematovision.importer_version': String(IMPORTER_VERSION),
    'hematovision.backbone_id': `${sha256.slice(0, 16)}-v${IMPORTER_VERSION}-${blocks.join('+')}`,
  };
}

/** TFLite/TensorFlow SAME padding: the odd pixel goes after, unlike a symmetric ONNX auto_pad guess. */
function samePads(size: number, k: number, stride: number, padding: 'same' | 'valid'): [number, number] {
  if (padding === 'valid') return [0, 0];
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + k - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

function ohwiToOihw(w: Float32Array, o: number, h: number, wd: number, i: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let a = 0; a < o; a++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < wd; x++)
        for (let c = 0; c < i; c++) out[((a * i + c) * h + y) * wd + x] = w[((a * h + y) * wd + x) * i + c];
  return out;
}

function hwcToChw(w: Float32Array, h: number, wd: number, c: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < wd; x++)
      for (let k = 0; k < c; k++) out[(k * h + y) * wd + x] = w[(y * wd + x) * c + k];
  return out;
}

/**
 * `spec` with the backbone weights of `model`, a HematoVision model (.onnx) built on the same TFLite file and
 * feature blocks, e.g. a fine-tuned one: training continues from it instead of from ImageNet. The head is not
 * read (its classes may differ).
 */
export function withBackboneOf(spec: NetSpec, model: Uint8Array, tfliteSha256: string): NetSpec {
  let meta: Record<string, string>;
  let weights: Map<string, Float32Array>;
  try {
    meta = readMetadata(model);
    weights = readFloatInitializers(model);
  } catch {
    throw new ModelError('The model is not an ONNX file.', 'bad_model');
  }
  if (meta['hematovision.backbone_sha256'] !== tfliteSha256)
    throw new ModelError(
      'The model is not built on this MobileNetV2 TFLite file (its hematovision.backbone_sha256 differs).',
      'bad_model',
    );
  if (meta['hematovision.feature_blocks'] !== spec.features.join(','))
    throw new ModelError(
      `The model pools blocks ${meta['hematovision.feature_blocks']}, not ${spec.features.join(',')}.`,
      'bad_model',
    );
  const layers = spec.layers.map((l): Layer => {
    if (l.kind !== 'conv') return l;
    const weight = weights.get(`${l.name}/W`);
    const bias = weights.get(`${l.name}/B`);
    if (weight?.length !== l.weight.length || bias?.length !== l.bias.length)
      throw new ModelError(`The model has no weights of the shape layer ${l.name} needs.`, 'bad_model');
    return { ...l, weight, bias };
  });
  return { ...spec, layers };
}
