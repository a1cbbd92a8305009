import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OnnxSession } from '../onnx/runtime.js';
import { buildInferenceGraph } from '../net/forward.js';
import { buildTrainingGraph, TRAIN_IO } from './graphs.js';
import { referenceForward, referenceLoss } from '../net/reference.js';
import { TrainingSession, type TrainStepResult } from './session.js';
import { cloneSpec, HEAD_BLOCK, inferShapes, specParams, type NetSpec } from '../net/spec.js';
import { seededRandom, smallTestSpec } from './test-net.js';
import { relativeError } from '../../testing/numeric.js';

const n = 3;
const k = 3;
const rand = seededRandom(7);
const images = Float32Array.from({ length: n * 3 * 20 * 20 }, () => 2 * rand() - 1);
const targets = Float32Array.from([1, 0, 0, 0, 0, 1, 0, 1, 0]);
const classWeights = Float32Array.of(1, 2, 0.5);
const sampleWeights = Float32Array.of(1, 0.5, 2);
const labelSmoothing = 0.1;
const lossOptions = { classWeights, sampleWeights, labelSmoothing };

/** Central differences in float64 of the reference loss, recomputing only from the perturbed layer on. */
function finiteDifferences(spec: NetSpec, param: string, input: Float64Array): Float64Array {
  const h = 1e-6;
  const layer = param.slice(0, param.lastIndexOf('/'));
  const at = spec.layers.findIndex((l) => l.name === layer);
  const base = referenceForward(spec, input, n);
  const known = new Map(
    [...base.tensors].filter(([name]) => at < 0 || spec.layers.findIndex((l) => l.name === name) < at),
  );
  const p = specParams(spec).find((q) => q.name === param)!;
  const w0 = Float64Array.from(p.data);
  const loss = (w: Float64Array) => {
    const logits = referenceForward(spec, input, n, {
      weights: new Map([[param, w]]),
      known: at < 0 ? base.tensors : known,
    }).logits;
    return referenceLoss(logits, n, k, targets, lossOptions);
  };
  return w0.map((_, i) => {
    const plus = w0.slice();
    const minus = w0.slice();
    plus[i] += h;
    minus[i] -= h;
    return (loss(plus) - loss(minus)) / (2 * h);
  });
}

describe('training graph on a small random network', () => {
  const spec = smallTestSpec(1, k);
  const input = Float64Array.from(images);
  let full: TrainStepResult;
  let fixed: TrainStepResult;

  beforeAll(async () => {
    const batch = { images, n, targets, classWeights, sampleWeights };
    const session = await TrainingSession.create(spec, { labelSmoothing });
    full = await session.step(batch);
    await session.close();
    // Built for 5 images and given 3: the GEMM depthwise path, with two zero-weight padding rows.
    const fixedSession = await TrainingSession.create(spec, { labelSmoothing, batchSize: n + 2 });
    fixed = await fixedSession.step(batch);
    await fixedSession.close();
  });

  it('exercises both Clip bounds and every backward case', () => {
    const ref = referenceForward(spec, input, n);
    for (const l of spec.layers) {
      if (l.kind !== 'conv' || !l.relu6 || l.name === 'b4/dw') continue;
      const t = ref.tensors.get(l.name)!;
      expect(t.some((v) => v === 0)).toBe(true);
      expect(t.some((v) => v === 6)).toBe(true);
      expect(t.some((v) => v > 0 && v < 6)).toBe(true);
    }
    const convs = spec.layers.filter((l) => l.kind === 'conv');
    expect(convs.some((l) => l.group > 1 && l.stride[0] === 2)).toBe(true);
    expect(convs.some((l) => l.group === 1 && l.kernel[0] === 3 && l.stride[0] === 2)).toBe(true);
    expect(convs.some((l) => l.pads[0] !== l.pads[2] || l.pads[1] !== l.pads[3])).toBe(true);
    expect(inferShapes(spec).get('b2/dw')).toEqual([12, 5, 4]); // depthwise, stride 2, a column unread
    expect(inferShapes(spec).get('b4/conv')).toEqual([8, 2, 2]); // 5 → 2 at stride 2: one row unread
  });

  it('matches float64 finite differences for every weight (relative error < 1e-4)', () => {
    const errors: string[] = [];
    for (const p of specParams(spec)) {
      const fd = finiteDifferences(spec, p.name, input);
      expect(fd.some((v) => Math.abs(v) > 1e-3)).toBe(true); // a gradient that actually flows
      const e = [full, fixed].map((r) => {
        const g = r.grads.get(p.name)!;
        expect(g).toHaveLength(p.data.length);
        return relativeError(g, fd);
      });
      errors.push(`${p.name} ${e.map((v) => v.toExponential(1)).join('/')}`);
      expect(Math.max(...e), p.name).toBeLessThan(1e-4);
    }
    console.log(`gradient check, dynamic/fixed batch (max |ORT − FD| / max |FD|): ${errors.join(', ')}`);
    expect(fixed.loss).toBeCloseTo(full.loss, 6);
    expect(relativeError(fixed.logits, full.logits)).toBeLessThan(1e-6);
  });

  it('computes the loss the inference graph and the float64 reference give', async () => {
    const inference = await OnnxSession.create(buildInferenceGraph(spec));
    const out = await inference.run({ [TRAIN_IO.input]: { data: images, dims: [n, 3, 20, 20] } }, [
      TRAIN_IO.logits,
    ]);
    await inference.close();
    expect(relativeError(full.logits, out.logits.data)).toBeLessThan(1e-5);
    const fromInference = referenceLoss(out.logits.data, n, k, targets, lossOptions);
    expect(full.loss).toBeCloseTo(fromInference, 5);
    const ref = referenceForward(spec, input, n);
    expect(full.loss).toBeCloseTo(referenceLoss(ref.logits, n, k, targets, lossOptions), 5);
    expect(relativeError(out.logits.data, ref.logits)).toBeLessThan(1e-5);
  });

  it('with unit weights and no smoothing, the head bias gradient is mean(softmax − y)', async () => {
    const session = await TrainingSession.create(spec);
    const r = await session.step({ images, n, targets });
    await session.close();
    const want = new Float64Array(k);
    for (let b = 0; b < n; b++) {
      const row = Array.from(r.logits.subarray(b * k, b * k + k));
      const z = row.reduce((a, v) => a + Math.exp(v), 0);
      row.forEach((v, c) => (want[c] += (Math.exp(v) / z - targets[b * k + c]) / n));
    }
    expect(relativeError(r.grads.get('head/B')!, want)).toBeLessThan(1e-5);
    expect(r.weightSum).toBe(n);
  });

  it('freezes a prefix, inline or as a separate graph, with the same gradients', async () => {
    const batch = { images, n, targets, classWeights, sampleWeights };
    for (const frozenPrefix of ['inline', 'separate'] as const) {
      const session = await TrainingSession.create(spec, { trainFromBlock: 3, labelSmoothing, frozenPrefix });
      expect(session.trainable.map((p) => p.name)).toEqual(
        specParams(spec)
          .filter((p) => p.block >= 3)
          .map((p) => p.name),
      );
      if (frozenPrefix === 'separate') {
        // b2/project feeds block 3; b2/expand is a frozen feature tap, so only its pooled vector crosses.
        expect(session.graph.prefixOutputs.map((p) => p.name).sort()).toEqual([
          'b2/expand/pooled',
          'b2/project',
        ]);
      }
      const r = await session.step(batch);
      await session.close();
      expect(r.loss).toBeCloseTo(full.loss, 5);
      for (const [name, g] of r.grads)
        expect(relativeError(g, full.grads.get(name)!), name).toBeLessThan(1e-5);
    }
  });

  it('trains the head alone with trainFromBlock = HEAD_BLOCK', async () => {
    const session = await TrainingSession.create(spec, {
      trainFromBlock: HEAD_BLOCK,
      labelSmoothing,
      frozenPrefix: 'separate',
    });
    const r = await session.step({ images, n, targets, classWeights, sampleWeights });
    await session.close();
    expect([...r.grads.keys()]).toEqual(['head/W', 'head/B']);
    expect(relativeError(r.grads.get('head/W')!, full.grads.get('head/W')!)).toBeLessThan(1e-5);
  });

  it('sees weights changed in place at the next step', async () => {
    const copy = cloneSpec(spec);
    const session = await TrainingSession.create(copy, { trainFromBlock: 2 });
    const before = await session.step({ images, n, targets });
    const w = session.trainable.find((p) => p.name === 'head/B')!.data;
    w[0] += 1; // raises logit 0 of every image by 1
    const after = await session.step({ images, n, targets });
    await session.close();
    for (let b = 0; b < n; b++) expect(after.logits[b * k] - before.logits[b * k]).toBeCloseTo(1, 5);
    expect(spec.head.bias[0]).not.toBe(copy.head.bias[0]); // the clone is independent
  });

  it('rejects bad batches and options with clear errors', async () => {
    expect(() => buildTrainingGraph(spec, { classes: 5 })).toThrow(/3 classes/);
    expect(() => buildTrainingGraph(spec, { labelSmoothing: 1 })).toThrow(/smoothing/);
    const bad = cloneSpec(spec);
    bad.layers[1] = { ...bad.layers[1], input: 'nowhere' } as (typeof bad.layers)[1];
    expect(() => buildTrainingGraph(bad)).toThrow(/nowhere/);
    expect(() => buildTrainingGraph(spec, { batchSize: 2.5 })).toThrow(/batch size/);
    const headless = {
      ...spec,
      head: { weight: new Float32Array(0), bias: new Float32Array(0), classes: 0 },
    };
    expect(() => buildTrainingGraph(headless)).toThrow(/no head/);
    expect(() => buildInferenceGraph(headless)).toThrow(/head: false/);
    expect(() => buildInferenceGraph(headless, { head: false })).not.toThrow();
    const session = await TrainingSession.create(spec, { trainFromBlock: HEAD_BLOCK, batchSize: 2 });
    await expect(session.step({ images, n: 2, targets })).rejects.toThrow(/batch of 2/);
    await expect(session.step({ images, n, targets })).rejects.toThrow(/at most 2 images, not 3/);
    await session.close();
    const dynamic = await TrainingSession.create(spec, { trainFromBlock: HEAD_BLOCK });
    await expect(dynamic.step({ images, n, targets, sampleWeights: new Float32Array(n) })).rejects.toThrow(
      /zero total weight/,
    );
    await dynamic.close();
  });
});

describe('TrainingSession and the spec', () => {
  let session: TrainingSession;
  afterAll(() => session?.close());

  it('lists parameters with their kind for weight-decay decisions', async () => {
    const spec = smallTestSpec(2, 2);
    session = await TrainingSession.create(spec);
    const kinds = Object.fromEntries(session.trainable.map((p) => [p.name, p.kind]));
    expect(kinds['stem/W']).toBe('conv');
    expect(kinds['b1/dw/W']).toBe('depthwise');
    expect(kinds['b1/dw/B']).toBe('bias');
    expect(kinds['head/W']).toBe('head_weight');
    expect(session.trainable.find((p) => p.name === 'b2/dw/W')!.dims).toEqual([12, 1, 3, 3]);
  });
});
