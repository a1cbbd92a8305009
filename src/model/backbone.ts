/**
 * MobileNetV2 from the TFLite file: the backbone model every classifier is built on, and its layers read into
 * a NetSpec for fine-tuning.
 */
import { ModelError } from '../errors.js';
import { inferShapes, type HeadSpec, type Layer, type NetSpec } from './net/spec.js';
import { GraphBuilder } from './onnx/graph-builder.js';
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

export interface BackboneTensors {
  /** [N, featureDim] pooled features of the chosen blocks, concatenated in block order. */
  features: string;
  /** [N, 1280, 7, 7] output of the last conv layer, for class activation maps. */
  featureMap: string;
  /** Channel count of each chosen block, in order (sums to featureDim). */
  blockDims: number[];
  /** [N, 1001] ImageNet probabilities (only with includeImagenetHead). */
  imagenetProbabilities?: string;
}

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
  classes?: number;
}

/**
 * Reads the float32 MobileNetV2 layers out of the (already verified) TFLite graph, exactly as addMobileNetV2
 * writes them: same weight layout, same asymmetric SAME pads, BatchNorm already folded. Stops before the
 * ImageNet head.
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
  if (k < 1) throw new ModelError('Give the head or the number of classes.', 'bad_spec');
  const shapes = inferShapes(spec);
  const d = features.reduce((s, f) => s + shapes.get(f)![0], 0);
  spec.head = options.head ?? { weight: new Float32Array(k * d), bias: new Float32Array(k), classes: k };
  inferShapes(spec);
  return spec;
}

/**
 * Writes MobileNetV2 as float32 NCHW ONNX ops into `g`, reading from `input` ([N,3,224,224], pixels already
 * mapped to (p − 128)/128, the TFLite input quantization). BatchNorm is already folded into the convolutions.
 */
export function addMobileNetV2(
  g: GraphBuilder,
  tfl: TfliteGraph,
  input: string,
  options: BackboneOptions = {},
): BackboneTensors {
  const blocks = options.featureBlocks ?? DEFAULT_FEATURE_BLOCKS;
  const names = new Map<number, string>([[tfl.inputs[0], input]]);
  const pooled = new Map<string, { name: string; dim: number }>();
  let featureMap: string | undefined;
  let imagenet: string | undefined;

  const nameOf = producedName(tfl, names);

  for (const op of tfl.ops) {
    const out = tfl.tensors[op.outputs[0]];
    const short = layerName(out.name);
    if (!options.includeImagenetHead && short.startsWith('Logits')) break;
    let y: string;
    switch (op.code) {
      case Op.CONV_2D:
      case Op.DEPTHWISE_CONV_2D: {
        const x = tfl.tensors[op.inputs[0]];
        const w = tfl.tensors[op.inputs[1]];
        const b = tfl.tensors[op.inputs[2]];
        const depthwise = op.code === Op.DEPTHWISE_CONV_2D;
        const [a, kh, kw, c] = w.shape; // conv: [O,H,W,I]; depthwise: [1,H,W,C]
        const wData = depthwise
          ? hwcToChw(dequantize(w), kh, kw, c)
          : ohwiToOihw(dequantize(w), a, kh, kw, c);
        const wDims = depthwise ? [c, 1, kh, kw] : [a, c, kh, kw];
        const p = op.conv!;
        const [pt, pb] = samePads(x.shape[1], kh, p.strideH, p.padding);
        const [pl, pr] = samePads(x.shape[2], kw, p.strideW, p.padding);
        y = g.op(
          'Conv',
          [
            nameOf(op.inputs[0]),
            g.constant(`${short}/W`, wData, wDims),
            g.constant(`${short}/B`, dequantize(b), [b.shape[0]]),
          ],
          {
            kernel_shape: [kh, kw],
            strides: [p.strideH, p.strideW],
            dilations: [p.dilationH, p.dilationW],
            pads: [pt, pl, pb, pr],
            group: depthwise ? c : 1,
          },
        );
        if (p.relu6)
          y = g.op('Clip', [y, g.scalar('zero', 0), g.scalar('six', 6)], {}, g.fresh(`${short}/relu6`));
        break;
      }
      case Op.ADD:
        y = g.op('Add', [nameOf(op.inputs[0]), nameOf(op.inputs[1])]);
        break;
      case Op.AVERAGE_POOL_2D: {
        const x = tfl.tensors[op.inputs[0]];
        const p = op.conv!;
        if (p.filterH !== x.shape[1] || p.filterW !== x.shape[2]) {
          throw new ModelError('Only global average pooling is supported.', 'unsupported_op');
        }
        y = g.op('GlobalAveragePool', [nameOf(op.inputs[0])]);
        break;
      }
      case Op.RESHAPE:
        y = g.op('Flatten', [nameOf(op.inputs[0])], { axis: 1 });
        break;
      case Op.SOFTMAX:
        y = g.op('Softmax', [nameOf(op.inputs[0])], { axis: 1 });
        imagenet = y;
        break;
      default:
        throw new ModelError(`Unsupported TFLite operator code ${op.code}.`, 'unsupported_op');
    }
    names.set(op.outputs[0], y);

    const block = blocks.find((bk) => short === bk);
    if (block && op.conv?.relu6) {
      const gap = g.op('GlobalAveragePool', [y]);
      pooled.set(block, { name: g.op('Flatten', [gap], { axis: 1 }), dim: out.shape[3] });
    }
    if (short === 'Conv_1') featureMap = y;
  }

  const missing = blocks.filter((b) => !pooled.has(b));
  if (missing.length > 0 || !featureMap) {
    throw new ModelError(
      `Feature blocks not found in the backbone: ${missing.join(', ') || 'Conv_1'}.`,
      'bad_tflite',
    );
  }
  const parts = blocks.map((b) => pooled.get(b)!);
  const features =
    parts.length === 1
      ? parts[0].name
      : g.op(
          'Concat',
          parts.map((p) => p.name),
          { axis: 1 },
        );
  return { features, featureMap, blockDims: parts.map((p) => p.dim), imagenetProbabilities: imagenet };
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

/** A standalone backbone ONNX model: input → features, feature_map (and ImageNet probabilities). */
export function buildBackboneModel(tflite: Uint8Array, options: BackboneOptions = {}): Uint8Array {
  const tfl = loadTfliteBackbone(tflite, options.verifySha256 ?? true);
  const g = new GraphBuilder('mobilenet_v2_backbone');
  const input = g.input('input', ['N', 3, INPUT_SIZE, INPUT_SIZE]);
  const t = addMobileNetV2(g, tfl, input, options);
  const featureDim = t.blockDims.reduce((a, b) => a + b, 0);
  g.op('Identity', [t.features], {}, 'features');
  g.output('features', ['N', featureDim]);
  g.op('Identity', [t.featureMap], {}, 'feature_map');
  g.output('feature_map', ['N', 1280, 7, 7]);
  if (t.imagenetProbabilities) {
    g.op('Identity', [t.imagenetProbabilities], {}, 'imagenet_probabilities');
    g.output('imagenet_probabilities', ['N', 1001]);
  }
  return g.toBytes({
    doc: BACKBONE_ATTRIBUTION,
    metadata: backboneMetadata(tfl.sha256, options.featureBlocks ?? DEFAULT_FEATURE_BLOCKS, t.blockDims),
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
