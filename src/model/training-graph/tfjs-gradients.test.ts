/**
 * Cross-checks the ORT training graph against an independent autodiff: TensorFlow.js (tfjs-core, cpu
 * backend, float32, NHWC) differentiates the same loss through two real MobileNetV2 blocks, the stride-1
 * residual block 2 and the stride-2 block 3, and every weight gradient must agree to 1e-4 of its tensor's
 * largest entry. Finite differences (training-graph.test.ts) check the maths; this checks it against the
 * framework conventions (layouts, asymmetric SAME pads, Clip masks, the loss's normalisation).
 */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// tfjs-core's node bundle leaves the gradient functions out (the tfjs umbrella package adds them); this
// registers them in tfjs's process-wide registry.
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { hasShared, skipNote, TFLITE } from '../../testing/shared.js';
import { loadTfliteBackbone, mobileNetV2Spec } from '../backbone.js';
import { referenceForward } from '../net/reference.js';
import { inferShapes, specParams, type Layer, type NetSpec } from '../net/spec.js';
import { TrainingSession, type TrainBatch, type TrainStepResult } from './session.js';
import { seededRandom } from './test-net.js';
import { relativeError } from '../../testing/numeric.js';

const FIRST = 2;
const LAST = 3;
/**
 * 10×10 keeps the cpu backend fast, and its parity matches the real 56×56, so the copied TFLite SAME pads
 * are still the SAME pads; at block 3's 5×5 output its projection's dW takes the single-Gemm form, while
 * the larger maps of block 2 take the batched MatMul.
 */
const SIZE = 10;

/**
 * Blocks FIRST..LAST of the real network with copies of their weights: the input is the tensor block FIRST
 * reads, the features are the spec's own taps inside those blocks plus the last layer, and the head is new.
 */
function blocksSpec(full: NetSpec, classes: number, rand: () => number): NetSpec {
  const layers: Layer[] = full.layers
    .filter((l) => l.block >= FIRST && l.block <= LAST)
    .map((l) =>
      l.kind === 'conv'
        ? { ...l, weight: l.weight.slice(), bias: l.bias.slice() }
        : { ...l, inputs: [...l.inputs] },
    );
  const first = layers[0];
  if (first.kind !== 'conv') throw new Error('Block starts with an add.');
  const last = layers[layers.length - 1].name;
  const features = [...full.features.filter((f) => layers.some((l) => l.name === f)), last];
  const channels = inferShapes(full);
  const d = features.reduce((a, f) => a + channels.get(f)![0], 0);
  const spec: NetSpec = {
    name: `mobilenet_v2_blocks_${FIRST}_${LAST}`,
    input: { name: first.input, channels: first.inChannels, height: SIZE, width: SIZE },
    layers,
    features,
    head: {
      weight: Float32Array.from({ length: classes * d }, () => (rand() - 0.5) * 0.1),
      bias: Float32Array.from({ length: classes }, () => rand() - 0.5),
      classes,
    },
  };
  inferShapes(spec); // the layers fit the smaller input
  return spec;
}

interface TfjsResult {
  loss: number;
  logits: Float32Array;
  grads: Map<string, Float32Array>;
}

/**
 * The loss of graphs.ts written in tfjs: ỹ = (1 − ε)·y + ε/k, sₙ = sample_weightₙ·Σ_c class_weight_c·y_nc
 * (unsmoothed targets), loss = Σₙ sₙ·CEₙ / Σₙ sₙ. Parameters stay in the spec's OIHW layout and are
 * transposed inside the differentiated function, so tfjs hands back gradients in that layout.
 */
function tfjsStep(spec: NetSpec, batch: Required<TrainBatch>, eps: number): TfjsResult {
  const params = specParams(spec);
  const { n } = batch;
  const k = spec.head.classes;
  const { channels, height, width } = spec.input;
  let logits: tf.Tensor | undefined;
  const lossOf = (...ws: tf.Tensor[]): tf.Scalar => {
    const w = new Map(params.map((p, i) => [p.name, ws[i]]));
    const t = new Map<string, tf.Tensor4D>();
    const x0 = tf.tensor4d(batch.images, [n, channels, height, width]);
    t.set(spec.input.name, tf.transpose(x0, [0, 2, 3, 1]));
    for (const l of spec.layers) {
      if (l.kind === 'add') {
        t.set(l.name, tf.add(t.get(l.inputs[0])!, t.get(l.inputs[1])!));
        continue;
      }
      const x = t.get(l.input)!;
      const [pt, pl, pb, pr] = l.pads;
      const pad: [[number, number], [number, number], [number, number], [number, number]] = [
        [0, 0],
        [pt, pb],
        [pl, pr],
        [0, 0],
      ];
      const kernel = w.get(`${l.name}/W`)! as tf.Tensor4D;
      // OIHW → HWIO for a full conv; [C, 1, kh, kw] → [kh, kw, C, 1] for a depthwise one.
      const y =
        l.group === 1
          ? tf.conv2d(x, tf.transpose(kernel, [2, 3, 1, 0]), l.stride, pad)
          : tf.depthwiseConv2d(x, tf.transpose(kernel, [2, 3, 0, 1]), l.stride, pad);
      const biased = tf.add<tf.Tensor4D>(y, w.get(`${l.name}/B`)!);
      // tf.relu6 passes the gradient at exactly 6 and ORT's mask does not: a tie no random input meets.
      t.set(l.name, l.relu6 ? tf.relu6(biased) : biased);
    }
    const feats = tf.concat(
      spec.features.map((f) => tf.mean(t.get(f)!, [1, 2])),
      1,
    );
    const z = tf.add(tf.matMul(feats, w.get('head/W')!, false, true), w.get('head/B')!);
    logits = tf.keep(z);
    const y = tf.tensor2d(batch.targets, [n, k]);
    const smooth = tf.add(tf.mul(y, 1 - eps), eps / k);
    const s = tf.mul(tf.sum(tf.mul(y, tf.tensor1d(batch.classWeights)), 1), tf.tensor1d(batch.sampleWeights));
    const ce = tf.neg(tf.sum(tf.mul(smooth, tf.logSoftmax(z)), 1));
    return tf.div(tf.sum(tf.mul(s, ce)), tf.sum(s));
  };
  const vars = params.map((p) => tf.tensor(p.data, p.dims));
  const { value, grads } = tf.valueAndGrads(lossOf)(vars);
  const out: TfjsResult = {
    loss: value.dataSync()[0],
    logits: logits!.dataSync() as Float32Array,
    grads: new Map(params.map((p, i) => [p.name, grads[i].dataSync() as Float32Array])),
  };
  tf.dispose([value, ...grads, ...vars, logits!]);
  return out;
}

if (!hasShared) skipNote('tfjs gradient cross-check on MobileNetV2 blocks', TFLITE);

describe.skipIf(!hasShared)('training graph gradients vs tfjs on real MobileNetV2 blocks', () => {
  const n = 2;
  const k = 4;
  const eps = 0.1;
  const rand = seededRandom(23);
  const spec = hasShared
    ? blocksSpec(mobileNetV2Spec(loadTfliteBackbone(readFileSync(TFLITE))), k, rand)
    : null!;
  const c = hasShared ? spec.input.channels : 0;
  // Block 2 reads a linear projection, so signed; this wide, every ReLU6 (block 3's depthwise the last) clips
  // at 6 as well as at 0, so both ends of every Clip mask are compared.
  const batch: Required<TrainBatch> = {
    images: Float32Array.from({ length: n * c * SIZE * SIZE }, () => (2 * rand() - 1) * 12),
    n,
    targets: Float32Array.from([0, 0, 1, 0, 1, 0, 0, 0]),
    classWeights: Float32Array.of(1, 2, 0.5, 1.5),
    sampleWeights: Float32Array.of(0.7, 1.6),
  };
  let want: TfjsResult;
  const got = new Map<'dynamic' | 'fixed', TrainStepResult>();

  beforeAll(async () => {
    tf.env().set('PROD', true); // quiets tfjs's advice to install tfjs-node, which cannot install here
    await tf.setBackend('cpu');
    want = tfjsStep(spec, batch, eps);
    const dynamic = await TrainingSession.create(spec, { labelSmoothing: eps });
    got.set('dynamic', await dynamic.step(batch));
    await dynamic.close();
    // A fixed batch with a padding row takes the GEMM path for the stride-1 depthwise dW.
    const fixed = await TrainingSession.create(spec, { labelSmoothing: eps, batchSize: n + 1 });
    got.set('fixed', await fixed.step(batch));
    await fixed.close();
  });

  it('covers a residual stride-1 block and a stride-2 block with asymmetric pads and both Clip bounds', () => {
    const convs = spec.layers.filter((l) => l.kind === 'conv');
    expect(spec.layers.some((l) => l.kind === 'add' && l.inputs.includes(spec.input.name))).toBe(true);
    expect(convs.some((l) => l.group > 1 && l.stride[0] === 2 && l.pads.join() === '0,0,1,1')).toBe(true);
    expect(convs.some((l) => l.group > 1 && l.stride[0] === 1)).toBe(true);
    expect(spec.features).toEqual(['expanded_conv_3/expand', 'expanded_conv_3/project']);
    expect(inferShapes(spec).get('expanded_conv_3/project')).toEqual([32, 5, 5]);
    const shapes = inferShapes(spec);
    for (const l of convs) {
      // Pads copied from the 56×56 network must still be TFLite SAME at this size.
      const size = shapes.get(l.input)![1];
      const total = Math.max((Math.ceil(size / l.stride[0]) - 1) * l.stride[0] + l.kernel[0] - size, 0);
      expect([l.pads[0], l.pads[2]], l.name).toEqual([Math.floor(total / 2), Math.ceil(total / 2)]);
    }
    const ref = referenceForward(spec, Float64Array.from(batch.images), n);
    for (const l of convs.filter((c) => c.relu6)) {
      const y = ref.tensors.get(l.name)!;
      const seen = [y.some((v) => v === 0), y.some((v) => v > 0 && v < 6), y.some((v) => v === 6)];
      expect(seen, l.name).toEqual([true, true, true]);
    }
  });

  it.each(['dynamic', 'fixed'] as const)('%s batch: loss and every gradient within 1e-4', (which) => {
    const r = got.get(which)!;
    expect(Math.abs(r.loss - want.loss) / Math.abs(want.loss)).toBeLessThan(1e-5);
    expect(relativeError(r.logits, want.logits)).toBeLessThan(1e-5);
    const params = specParams(spec);
    expect([...r.grads.keys()]).toEqual(params.map((p) => p.name));
    for (const p of params) {
      const b = want.grads.get(p.name)!;
      expect(
        b.some((v) => v !== 0),
        p.name,
      ).toBe(true); // a gradient that actually flows
      expect(relativeError(r.grads.get(p.name)!, b), p.name).toBeLessThan(1e-4);
    }
  });
});
