import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { createRng } from '../../imaging/random.js';
import { calibrateRanges, minimumErrorRange, percentileRange } from './calibrate.js';
import { DType, GraphBuilder } from './graph-builder.js';
import { activationParams, planQuantization, quantizeModel, quantizeWeights } from './quantize.js';
import { OnnxSession, type FloatTensor } from './runtime.js';

const { onnx } = onnxProto;

/**
 * A MobileNetV2-like miniature: conv + ReLU6, depthwise conv + ReLU6, linear 1×1 projection, a residual Add,
 * then a float head (Gemm) that must stay float. `c` channels; weights drawn from a seeded generator.
 */
function tinyNet(c = 8): Uint8Array {
  const rng = createRng(7);
  const rand = (n: number, s: number) => Float32Array.from({ length: n }, () => (rng() * 2 - 1) * s);
  const g = new GraphBuilder('tiny');
  const x = g.input('input', ['N', 3, 16, 16]);
  const lo = g.scalar('lo', 0);
  const hi = g.scalar('hi', 6);
  const stem = g.op(
    'Conv',
    [x, g.constant('stem/W', rand(c * 27, 0.5), [c, 3, 3, 3]), g.constant('stem/B', rand(c, 0.2), [c])],
    {
      kernel_shape: [3, 3],
      pads: [1, 1, 1, 1],
    },
  );
  const a = g.op('Clip', [stem, lo, hi], {}, 'stem');
  const dw = g.op(
    'Clip',
    [
      g.op(
        'Conv',
        [a, g.constant('dw/W', rand(c * 9, 0.8), [c, 1, 3, 3]), g.constant('dw/B', rand(c, 0.2), [c])],
        {
          kernel_shape: [3, 3],
          pads: [1, 1, 1, 1],
          group: c,
        },
      ),
      lo,
      hi,
    ],
    {},
    'dw',
  );
  const proj = g.op(
    'Conv',
    [dw, g.constant('proj/W', rand(c * c, 0.4), [c, c, 1, 1]), g.constant('proj/B', rand(c, 0.1), [c])],
    {},
    'proj',
  );
  const add = g.op('Add', [proj, a], {}, 'add');
  const pooled = g.op('Flatten', [g.op('GlobalAveragePool', [add])], { axis: 1 }, 'features');
  g.nodeScope = 'head/';
  g.op(
    'Gemm',
    [pooled, g.constant('head/W', rand(3 * c, 1), [3, c]), g.constant('head/b', rand(3, 0.1), [3])],
    { transB: 1 },
    'logits',
  );
  g.output('features', ['N', c]);
  g.output('logits', ['N', 3]);
  return g.toBytes();
}

function inputs(n: number, seed: number): FloatTensor {
  const rng = createRng(seed);
  // Smooth images with noise, in the product's input range [-1, 1).
  const data = Float32Array.from({ length: n * 3 * 16 * 16 }, (_, i) =>
    Math.max(-1, Math.min(0.99, Math.sin(i * 0.05 + seed) * 0.7 + (rng() - 0.5) * 0.3)),
  );
  return { data, dims: [n, 3, 16, 16] };
}

async function run(model: Uint8Array, x: FloatTensor, outputs: string[]) {
  const s = await OnnxSession.create(model, 1);
  try {
    return await s.run({ input: x }, outputs);
  } finally {
    await s.close();
  }
}

async function quantized(model: Uint8Array, activations: 'uint8' | 'int8' = 'uint8') {
  const plan = planQuantization(model, ['head/']);
  const calib = [inputs(4, 1), inputs(4, 2)];
  const ranges = await calibrateRanges(model, plan.tensors, () => calib, { method: 'minmax' });
  return quantizeModel(model, ranges, { activations, keepFloat: ['head/'] });
}

const dir = mkdtempSync(join(tmpdir(), 'hv-quant-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('int8 quantization (QDQ)', () => {
  it('plans the activations around every Conv and the residual Add, folding the ReLU6 clips', () => {
    const plan = planQuantization(tinyNet(), ['head/']);
    expect(plan.nodes).toHaveLength(3);
    expect(plan.tensors.sort()).toEqual(['add', 'dw', 'input', 'proj', 'stem']);
    expect([...plan.clips.keys()].sort()).toEqual(['dw', 'stem']);
  });

  it('computes what the float model computes, to within the rounding of 8-bit steps', async () => {
    const model = tinyNet();
    const q = await quantized(model);
    const x = inputs(3, 9); // not among the calibration inputs
    const a = await run(model, x, ['features', 'logits']);
    const b = await run(q.bytes, x, ['features', 'logits']);
    const spread = Math.max(...a.logits.data) - Math.min(...a.logits.data);
    for (let i = 0; i < a.logits.data.length; i++)
      expect(Math.abs(a.logits.data[i] - b.logits.data[i])).toBeLessThan(0.05 * spread);
    // Not the float model unchanged: the outputs really went through 8-bit steps.
    expect(a.logits.data).not.toEqual(b.logits.data);
    expect(q.counts).toMatchObject({ conv: 3, gemm: 0, add: 1, clipsFolded: 2 });
  });

  it('stores the weights as int8 (per output channel) and biases as int32, keeps the head float', async () => {
    const q = await quantized(tinyNet());
    const graph = onnx.ModelProto.decode(q.bytes).graph!;
    const type = new Map(graph.initializer!.map((t) => [t.name, t.dataType]));
    for (const w of ['stem/W', 'dw/W', 'proj/W']) {
      expect(type.get(`${w}/int8`)).toBe(DType.int8);
      expect(type.has(w)).toBe(false);
    }
    const biases = graph.initializer!.filter((t) => t.name!.includes('/int32/'));
    expect(biases.map((t) => t.name!.split('/')[0]).sort()).toEqual(['dw', 'proj', 'stem']);
    expect(biases.every((t) => t.dataType === DType.int32)).toBe(true);
    expect(type.get('head/W')).toBe(DType.float);
    const ops = graph.node!.map((n) => n.opType);
    expect(ops.filter((o) => o === 'Clip')).toHaveLength(0);
    expect(ops.filter((o) => o === 'QuantizeLinear')).toHaveLength(5);
  });

  it('is fused by ONNX Runtime into int8 kernels (QLinearConv, QLinearAdd)', async () => {
    const q = await quantized(tinyNet(16));
    const path = join(dir, 'optimized.onnx');
    const s = await ort.InferenceSession.create(q.bytes, {
      graphOptimizationLevel: 'all',
      optimizedModelFilePath: path,
    });
    await s.release();
    const ops = onnx.ModelProto.decode(readFileSync(path)).graph!.node!.map((n) => n.opType);
    expect(ops.filter((o) => o === 'QLinearConv')).toHaveLength(3);
    expect(ops).toContain('QLinearAdd');
    expect(ops).not.toContain('Conv');
  });

  it('shrinks the file to about a quarter when weights dominate', async () => {
    const model = tinyNet(256);
    const q = await quantized(model);
    expect(q.bytes.byteLength).toBeLessThan(0.35 * model.byteLength);
  });

  it('also writes int8 activations when asked', async () => {
    const model = tinyNet();
    const q = await quantized(model, 'int8');
    const graph = onnx.ModelProto.decode(q.bytes).graph!;
    expect(graph.initializer!.find((t) => t.name === 'stem/quant/zero_point')!.dataType).toBe(DType.int8);
    const x = inputs(2, 5);
    const [a, b] = [await run(model, x, ['logits']), await run(q.bytes, x, ['logits'])];
    const spread = Math.max(...a.logits.data) - Math.min(...a.logits.data);
    for (let i = 0; i < a.logits.data.length; i++)
      expect(Math.abs(a.logits.data[i] - b.logits.data[i])).toBeLessThan(0.05 * spread);
  });

  it('leaves float the convolutions around an activation kept exact', () => {
    const plan = planQuantization(tinyNet(), ['head/'], ['dw']);
    expect(plan.nodes).toHaveLength(1);
    expect(plan.tensors).not.toContain('dw');
  });

  it('refuses to quantize without a calibrated range for every planned tensor', () => {
    expect(() => quantizeModel(tinyNet(), new Map(), { activations: 'uint8' })).toThrow(
      /No calibrated range/,
    );
  });
});

describe('quantization parameters', () => {
  it('represents zero exactly; a ReLU6 range gets zero point 0 (uint8) or −128 (int8)', () => {
    expect(activationParams({ min: 0, max: 6 }, 'uint8')).toEqual({ scale: 6 / 255, zeroPoint: 0 });
    expect(activationParams({ min: 0, max: 6 }, 'int8')).toEqual({ scale: 6 / 255, zeroPoint: -128 });
    const p = activationParams({ min: -1, max: 1 - 2 / 256 }, 'uint8');
    expect(p.zeroPoint).toBe(128);
    expect(p.scale).toBeCloseTo(1 / 128, 9);
    // A range not holding 0 is widened to hold it.
    expect(activationParams({ min: 2, max: 5 }, 'uint8').zeroPoint).toBe(0);
  });

  it('quantizes weights symmetrically per output channel, within half a step', () => {
    const w = Float32Array.from([1, -0.5, 0.25, 0.1, 100, -50, 25, 0]);
    const { q, scales } = quantizeWeights(w, [2, 4], 0);
    expect(Array.from(scales)).toEqual([1 / 127, 100 / 127].map(Math.fround));
    expect(q[0]).toBe(127);
    expect(q[4]).toBe(127);
    for (let i = 0; i < w.length; i++)
      expect(Math.abs(q[i] * scales[i >> 2] - w[i])).toBeLessThanOrEqual(scales[i >> 2] / 2 + 1e-6);
  });

  it('percentile and least-error ranges ignore rare outliers that min/max keeps', () => {
    // A million values spread over [0, 1] and one at 100: a 4096-bin histogram over [0, 100].
    const h = new Float64Array(4096);
    for (let b = 0; b <= 41; b++) h[b] = 1e6 / 42;
    h[4095] = 1;
    const r = { min: 0, max: 100 };
    expect(percentileRange(h, r, 0.999).max).toBeLessThan(1.1);
    // Least error: clipping the outlier costs (100 − max)², rounding a million values ~(max/255)²/12 each.
    const best = minimumErrorRange(h, r).max;
    expect(best).toBeGreaterThan(30);
    expect(best).toBeLessThan(60);
    expect(percentileRange(h, r, 1).max).toBe(100);
  });
});
