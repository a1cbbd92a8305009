import { describe, expect, it } from 'vitest';
import { TrainingSession } from '../model/training-graph/session.js';
import { cloneSpec, type ParamInfo } from '../model/net/spec.js';
import { seededRandom, smallTestSpec } from '../model/training-graph/test-net.js';
import { AdamW, GradientAccumulator, parametersFrom, warmupCosine, type Parameter } from './optimizer.js';

const param = (decay: boolean): Parameter => ({
  name: decay ? 'w' : 'b',
  data: Float32Array.of(1, -2),
  decay,
});
const g1 = new Map([
  ['w', Float32Array.of(0.5, -0.1)],
  ['b', Float32Array.of(0.5, -0.1)],
]);
const g2 = new Map([
  ['w', Float32Array.of(-0.5, 0.2)],
  ['b', Float32Array.of(-0.5, 0.2)],
]);

describe('AdamW', () => {
  it('matches a hand-computed update over two steps, with decay only where asked', () => {
    const w = param(true);
    const b = param(false);
    const opt = new AdamW([w, b], { weightDecay: 0.01 });
    opt.step(g1, 0.1);
    // Step 1: m = 0.1·g, v = 0.001·g², so m̂/√v̂ = g/|g| = ±1 (less ε):
    // w = [1·(1 − 0.1·0.01) − 0.1, −2·0.999 + 0.1] = [0.899, −1.898]; the bias skips the decay: [0.9, −1.9].
    expect(w.data[0]).toBeCloseTo(0.899, 6);
    expect(w.data[1]).toBeCloseTo(-1.898, 6);
    expect(b.data[0]).toBeCloseTo(0.9, 6);
    expect(b.data[1]).toBeCloseTo(-1.9, 6);
    opt.step(g2, 0.1);
    // Step 2, entry 0: m = 0.9·0.05 + 0.1·(−0.5) = −0.005, v = 0.999·0.00025 + 0.001·0.25 = 0.00049975;
    // m̂ = −0.005/0.19 = −0.0263158, v̂ = 0.00049975/0.001999 = 0.25; w = 0.899·0.999 + 0.1·0.0263158/0.5 = 0.9033642.
    // Entry 1: m = 0.011, v = 4.999e-5, m̂ = 0.0578947, v̂ = 0.0250075 (√ = 0.1581376); w = −1.898·0.999 − 0.0366102 = −1.9327124.
    expect(w.data[0]).toBeCloseTo(0.9033642, 6);
    expect(w.data[1]).toBeCloseTo(-1.9327124, 6);
    expect(b.data[0]).toBeCloseTo(0.9052632, 6); // 0.9 + 0.1·0.0263158/0.5
    expect(b.data[1]).toBeCloseTo(-1.9366104, 6);
    expect(opt.stepCount).toBe(2);
  });

  it('saves and restores its state so a resumed run continues identically', () => {
    const a = param(true);
    const opt = new AdamW([a]);
    opt.step(g1, 0.1);
    const saved = opt.saveState();
    const b = { ...param(true), data: a.data.slice() };
    const resumed = new AdamW([b]);
    resumed.loadState(saved);
    opt.step(g2, 0.1);
    resumed.step(g2, 0.1);
    expect(Array.from(b.data)).toEqual(Array.from(a.data));
    expect(() =>
      new AdamW([{ name: 'other', data: new Float32Array(3), decay: false }]).loadState(saved),
    ).toThrow(/other/);
  });

  it('refuses a missing or mis-sized gradient', () => {
    const opt = new AdamW([param(true)]);
    expect(() => opt.step(new Map(), 0.1)).toThrow(/gradient/);
    expect(() => opt.step(new Map([['w', new Float32Array(3)]]), 0.1)).toThrow(/gradient/);
  });
});

describe('warm-up and cosine schedule', () => {
  it('rises linearly, then follows a half cosine to the floor and stays there', () => {
    const o = { peak: 1, warmupSteps: 4, totalSteps: 12, final: 0.1 };
    expect([0, 1, 2, 3].map((s) => warmupCosine(s, o))).toEqual([0.25, 0.5, 0.75, 1]);
    expect(warmupCosine(4, o)).toBeCloseTo(1, 12);
    expect(warmupCosine(8, o)).toBeCloseTo(0.55, 12); // halfway: 0.1 + 0.9·0.5
    expect(warmupCosine(12, o)).toBeCloseTo(0.1, 12);
    expect(warmupCosine(50, o)).toBeCloseTo(0.1, 12);
    expect(warmupCosine(0, { peak: 2, warmupSteps: 0, totalSteps: 10 })).toBe(2);
  });
});

describe('gradient accumulation', () => {
  it('averages batches by their weight, as one large batch would', () => {
    const acc = new GradientAccumulator();
    acc.add(new Map([['w', Float32Array.of(1, 2)]]), 3); // batch of total weight 3
    acc.add(new Map([['w', Float32Array.of(5, -2)]]), 1);
    expect(acc.count).toBe(2);
    expect(Array.from(acc.mean().get('w')!)).toEqual([2, 1]); // (3·1 + 5)/4, (3·2 − 2)/4
    acc.reset();
    expect(() => acc.mean()).toThrow(/No gradients/);
    acc.add(new Map([['w', Float32Array.of(4, 4)]]));
    expect(Array.from(acc.mean().get('w')!)).toEqual([4, 4]);
    expect(() => acc.add(new Map([['w', new Float32Array(3)]]))).toThrow(/changed size/);
  });
});

describe('parametersFrom', () => {
  it('decays convolution and head weights, not biases nor (by default) depthwise kernels', () => {
    const info = (name: string, kind: ParamInfo['kind']): ParamInfo => ({
      name,
      kind,
      dims: [1],
      block: 0,
      data: new Float32Array(1),
    });
    const params = [info('c', 'conv'), info('d', 'depthwise'), info('b', 'bias'), info('h', 'head_weight')];
    expect(parametersFrom(params).map((p) => p.decay)).toEqual([true, false, false, true]);
    expect(parametersFrom(params, { decayDepthwise: true }).map((p) => p.decay)).toEqual([
      true,
      true,
      false,
      true,
    ]);
    expect(parametersFrom(params)[0].data).toBe(params[0].data); // updates land in the spec
  });
});

describe('optimizer with the ONNX training graph', () => {
  const n = 4;
  const k = 3;
  const rand = seededRandom(5);
  const images = Float32Array.from({ length: n * 3 * 20 * 20 }, () => 2 * rand() - 1);
  const targets = Float32Array.from([1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0]);
  const classWeights = Float32Array.of(0.5, 2, 1);

  it('accumulated half-batches give the full-batch gradient, class weights included', async () => {
    const session = await TrainingSession.create(smallTestSpec(3, k), { labelSmoothing: 0.1 });
    const full = await session.step({ images, n, targets, classWeights });
    const acc = new GradientAccumulator();
    const half = (n / 2) * 3 * 20 * 20;
    for (const h of [0, 1]) {
      const r = await session.step({
        images: images.subarray(h * half, (h + 1) * half),
        n: n / 2,
        targets: targets.subarray((h * n * k) / 2, ((h + 1) * n * k) / 2),
        classWeights,
      });
      acc.add(r.grads, r.weightSum);
    }
    await session.close();
    expect(full.weightSum).toBeCloseTo(0.5 + 2 + 1 + 0.5, 6);
    const mean = acc.mean();
    for (const [name, g] of full.grads) {
      const a = mean.get(name)!;
      const scale = Math.max(...g.map(Math.abs));
      a.forEach((v, i) => expect(Math.abs(v - g[i]) / scale, name).toBeLessThan(1e-5));
    }
  });

  it('AdamW with warm-up and cosine fits a small batch', async () => {
    // Each image lights the colour channel of its class, so the batch is learnable through the saturating net.
    const labels = [0, 1, 2, 0];
    const coded = Float32Array.from({ length: n * 3 * 400 }, (_, i) => {
      const [b, c] = [Math.floor(i / 1200), Math.floor(i / 400) % 3];
      return (c === labels[b] ? 0.8 : -0.8) + 0.4 * (rand() - 0.5);
    });
    const spec = cloneSpec(smallTestSpec(3, k));
    const session = await TrainingSession.create(spec);
    const opt = new AdamW(parametersFrom(session.trainable), { weightDecay: 1e-4 });
    const losses: number[] = [];
    for (let step = 0; step < 40; step++) {
      const r = await session.step({ images: coded, n, targets });
      losses.push(r.loss);
      opt.step(r.grads, warmupCosine(step, { peak: 0.03, warmupSteps: 5, totalSteps: 40 }));
    }
    await session.close();
    expect(losses[0]).toBeGreaterThan(1);
    expect(losses[39]).toBeLessThan(0.1);
  });
});
