import { createHash } from 'node:crypto';
import * as flatbuffers from 'flatbuffers';
import { ModelError } from '../../errors.js';
import { ActivationFunctionType } from './generated/tflite/activation-function-type.js';
import { BuiltinOptions } from './generated/tflite/builtin-options.js';
import { Conv2DOptions } from './generated/tflite/conv2doptions.js';
import { DepthwiseConv2DOptions } from './generated/tflite/depthwise-conv2doptions.js';
import { Model } from './generated/tflite/model.js';
import { Padding } from './generated/tflite/padding.js';
import { Pool2DOptions } from './generated/tflite/pool2doptions.js';
import { TensorType } from './generated/tflite/tensor-type.js';

/** Upstream BuiltinOperator codes of the ops MobileNetV2 uses. */
export const Op = {
  ADD: 0,
  AVERAGE_POOL_2D: 1,
  CONV_2D: 3,
  DEPTHWISE_CONV_2D: 4,
  RESHAPE: 22,
  SOFTMAX: 25,
} as const;

export interface TfliteTensor {
  index: number;
  /** The first of TFLite's ';'-joined names: the op that produced it (e.g. MobilenetV2/Conv_1/Relu6). */
  name: string;
  shape: number[];
  type: TensorType;
  scale?: number;
  zeroPoint?: number;
  /** Present for constant tensors. */
  data?: Uint8Array;
}

export interface ConvParams {
  padding: 'same' | 'valid';
  strideH: number;
  strideW: number;
  dilationH: number;
  dilationW: number;
  relu6: boolean;
  filterH?: number;
  filterW?: number;
}

export interface TfliteOp {
  code: number;
  inputs: number[];
  outputs: number[];
  conv?: ConvParams;
}

export interface TfliteGraph {
  sha256: string;
  tensors: TfliteTensor[];
  ops: TfliteOp[];
  inputs: number[];
  outputs: number[];
}

/** Reads the main subgraph of a TFLite flatbuffer into plain objects. */
export function readTflite(bytes: Uint8Array): TfliteGraph {
  const bb = new flatbuffers.ByteBuffer(bytes);
  if (bytes.length < 8 || !Model.bufferHasIdentifier(bb)) {
    throw new ModelError('Not a TFLite model: the file lacks the "TFL3" identifier.', 'not_tflite');
  }
  const model = Model.getRootAsModel(bb);
  const graph = model.subgraphs(0);
  if (!graph) throw new ModelError('The TFLite model has no subgraph.', 'not_tflite');

  const tensors: TfliteTensor[] = [];
  for (let i = 0; i < graph.tensorsLength(); i++) {
    const t = graph.tensors(i)!;
    const q = t.quantization();
    const buffer = model.buffers(t.buffer());
    const data = buffer?.dataArray() ?? null;
    tensors.push({
      index: i,
      name: (t.name() ?? `t${i}`).split(';')[0],
      shape: Array.from(t.shapeArray() ?? []),
      type: t.type(),
      scale: q && q.scaleLength() > 0 ? q.scale(0)! : undefined,
      zeroPoint: q && q.zeroPointLength() > 0 ? Number(q.zeroPoint(0)!) : undefined,
      data: data && data.length > 0 ? data : undefined,
    });
  }

  const ops: TfliteOp[] = [];
  for (let i = 0; i < graph.operatorsLength(); i++) {
    const o = graph.operators(i)!;
    const code = model.operatorCodes(o.opcodeIndex())!.builtinCode();
    ops.push({
      code,
      inputs: Array.from(o.inputsArray() ?? []),
      outputs: Array.from(o.outputsArray() ?? []),
      conv: convParams(o.builtinOptionsType(), (t) => o.builtinOptions(t)),
    });
  }
  return {
    sha256: createHash('sha256').update(bytes).digest('hex'),
    tensors,
    ops,
    inputs: Array.from(graph.inputsArray() ?? []),
    outputs: Array.from(graph.outputsArray() ?? []),
  };
}

function convParams(type: BuiltinOptions, get: (t: object) => unknown): ConvParams | undefined {
  const common = (o: { padding(): Padding; strideH(): number; strideW(): number }) => ({
    padding: o.padding() === Padding.SAME ? ('same' as const) : ('valid' as const),
    strideH: o.strideH(),
    strideW: o.strideW(),
  });
  if (type === BuiltinOptions.Conv2DOptions || type === BuiltinOptions.DepthwiseConv2DOptions) {
    const o = get(
      type === BuiltinOptions.Conv2DOptions ? new Conv2DOptions() : new DepthwiseConv2DOptions(),
    ) as Conv2DOptions;
    return {
      ...common(o),
      dilationH: o.dilationHFactor(),
      dilationW: o.dilationWFactor(),
      relu6: relu6(o.fusedActivationFunction()),
    };
  }
  if (type === BuiltinOptions.Pool2DOptions) {
    const o = get(new Pool2DOptions()) as Pool2DOptions;
    return {
      ...common(o),
      dilationH: 1,
      dilationW: 1,
      relu6: relu6(o.fusedActivationFunction()),
      filterH: o.filterHeight(),
      filterW: o.filterWidth(),
    };
  }
  return undefined;
}

function relu6(a: ActivationFunctionType): boolean {
  if (a !== ActivationFunctionType.NONE && a !== ActivationFunctionType.RELU6) {
    throw new ModelError(
      `Unsupported fused activation ${ActivationFunctionType[a]} in the TFLite model.`,
      'unsupported_op',
    );
  }
  return a === ActivationFunctionType.RELU6;
}

/** Float values of a constant tensor: uint8 → scale·(q − zero point), int32 (biases) → scale·q. */
export function dequantize(t: TfliteTensor): Float32Array {
  if (!t.data) throw new ModelError(`Tensor ${t.name} has no data.`, 'bad_tflite');
  const n = t.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  if (t.type === TensorType.FLOAT32) {
    out.set(new Float32Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + n * 4)));
    return out;
  }
  const scale = t.scale ?? 1;
  const zp = t.zeroPoint ?? 0;
  if (t.type === TensorType.UINT8) {
    for (let i = 0; i < n; i++) out[i] = scale * (t.data[i] - zp);
  } else if (t.type === TensorType.INT32) {
    const view = new DataView(t.data.buffer, t.data.byteOffset, n * 4);
    for (let i = 0; i < n; i++) out[i] = scale * (view.getInt32(i * 4, true) - zp);
  } else {
    throw new ModelError(`Tensor ${t.name} has unsupported type ${TensorType[t.type]}.`, 'bad_tflite');
  }
  return out;
}
