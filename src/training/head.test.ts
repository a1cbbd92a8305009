import { describe, expect, it } from 'vitest';
import { DatasetError } from '../errors.js';
import {
  createSoftmaxObjective,
  fitSoftmaxHead,
  foldStandardisation,
  headLogits,
  scoreHead,
  selectL2,
  trainSoftmaxHead,
  type LinearHead,
} from './head.js';
import { createRng as rng } from '../imaging/random.js';
import { argmax } from '../model/softmax.js';

/**
 * Gaussian classes around random centres, with per-feature offsets and scales far from 0/1 so the
 * standardisation matters. `spread` sets the noise: small → separable, large → overlapping.
 */
function blobs(n: number, d: number, k: number, spread: number, seed: number, centresSeed = seed) {
  const crand = rng(centresSeed);
  const centres = Float64Array.from({ length: k * d }, () => 2 * crand() - 1);
  const offset = Float64Array.from({ length: d }, () => 10 * crand());
  const scale = Float64Array.from({ length: d }, () => 0.1 + 5 * crand());
  const rand = rng(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const x = new Float32Array(n * d);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % k;
    y[i] = c;
    for (let j = 0; j < d; j++)
      x[i * d + j] = offset[j] + scale[j] * (centres[c * d + j] + spread * normal());
  }
  return { x, y };
}

function accuracy(logits: Float32Array, y: Int32Array, k: number): number {
  let ok = 0;
  for (let i = 0; i < y.length; i++) {
    if (argmax(logits, i, k) === y[i]) ok++;
  }
  return ok / y.length;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('trainSoftmaxHead', () => {
  it('fits separable data perfectly and stores its standardisation', () => {
    const n = 240;
    const d = 10;
    const k = 3;
    const { x, y } = blobs(n, d, k, 0.1, 1);
    const head = trainSoftmaxHead(x, n, d, y, k, { l2: 1e-4 });
    expect(head.d).toBe(d);
    expect(head.k).toBe(k);
    expect(head.weight).toHaveLength(k * d);
    expect(accuracy(headLogits(head, x, n), y, k)).toBe(1);
    // Mean and std are those of the training rows.
    let m0 = 0;
    for (let i = 0; i < n; i++) m0 += x[i * d];
    expect(head.mean[0]).toBeCloseTo(m0 / n, 3);
    let v0 = 0;
    for (let i = 0; i < n; i++) v0 += (x[i * d] - head.mean[0]) ** 2;
    expect(head.std[0]).toBeCloseTo(Math.sqrt(v0 / n), 3);
  });

  it('handles k > 4 (two class chunks) and n not a multiple of 4', () => {
    const n = 303;
    const d = 7;
    const k = 6;
    const { x, y } = blobs(n, d, k, 0.05, 2);
    const fit = fitSoftmaxHead(x, n, d, y, k, { l2: 1e-4 });
    expect(fit.converged).toBe(true);
    expect(accuracy(headLogits(fit.head, x, n), y, k)).toBe(1);
  });

  it('generalises on overlapping classes and reports progress', () => {
    const d = 20;
    const k = 4;
    const train = blobs(2000, d, k, 0.8, 3, 99);
    const test = blobs(1000, d, k, 0.8, 4, 99);
    const losses: number[] = [];
    const head = trainSoftmaxHead(train.x, 2000, d, train.y, k, {
      l2: 1e-3,
      onProgress: (_iter, loss) => losses.push(loss),
    });
    expect(losses.length).toBeGreaterThan(3);
    for (let i = 1; i < losses.length; i++) expect(losses[i]).toBeLessThanOrEqual(losses[i - 1]);
    const acc = accuracy(headLogits(head, test.x, 1000), test.y, k);
    expect(acc).toBeGreaterThan(0.8);
    expect(acc).toBeLessThan(1);
  });

  it('treats a sample weight of 2 like a duplicated row', () => {
    const n = 200;
    const d = 6;
    const k = 3;
    const { x, y } = blobs(n, d, k, 0.9, 5);
    const rand = rng(6);
    const weights = new Float32Array(n);
    const dupRows: number[] = [];
    for (let i = 0; i < n; i++) {
      const twice = rand() < 0.3;
      weights[i] = twice ? 2 : 1;
      dupRows.push(i);
      if (twice) dupRows.push(i);
    }
    const xd = new Float32Array(dupRows.length * d);
    const yd = new Int32Array(dupRows.length);
    dupRows.forEach((r, i) => {
      xd.set(x.subarray(r * d, (r + 1) * d), i * d);
      yd[i] = y[r];
    });
    const opts = { l2: 1e-2, tol: 1e-9, maxIter: 500 };
    const weighted = trainSoftmaxHead(x, n, d, y, k, { ...opts, sampleWeights: weights });
    const duplicated = trainSoftmaxHead(xd, dupRows.length, d, yd, k, opts);
    const unweighted = trainSoftmaxHead(x, n, d, y, k, opts);
    expect(maxAbsDiff(weighted.mean, duplicated.mean)).toBeLessThan(1e-4);
    expect(maxAbsDiff(weighted.std, duplicated.std)).toBeLessThan(1e-4);
    expect(maxAbsDiff(weighted.weight, duplicated.weight)).toBeLessThan(1e-4);
    expect(maxAbsDiff(weighted.bias, duplicated.bias)).toBeLessThan(1e-4);
    // ...and the weights did change something.
    expect(maxAbsDiff(weighted.weight, unweighted.weight)).toBeGreaterThan(1e-3);
  });

  it('gives the same head with one or two threads', () => {
    const n = 1001;
    const d = 9;
    const k = 4;
    const { x, y } = blobs(n, d, k, 0.7, 7);
    const one = fitSoftmaxHead(x, n, d, y, k, { l2: 1e-3, threads: 1 });
    const two = fitSoftmaxHead(x, n, d, y, k, { l2: 1e-3, threads: 2 });
    expect(one.threads).toBe(1);
    expect(two.threads).toBe(2);
    expect(maxAbsDiff(one.head.weight, two.head.weight)).toBeLessThan(1e-4);
    expect(two.loss).toBeCloseTo(one.loss, 8);
  });

  it('rejects inconsistent input with a DatasetError a person can act on', () => {
    const { x, y } = blobs(20, 3, 2, 0.5, 8);
    expect(() => trainSoftmaxHead(x, 20, 4, y, 2, { l2: 0 })).toThrow(DatasetError);
    expect(() => trainSoftmaxHead(x, 20, 3, y, 3, { l2: 0 })).toThrow(/Class 2 has no training rows/);
    const bad = Int32Array.from(y);
    bad[3] = 5;
    expect(() => trainSoftmaxHead(x, 20, 3, bad, 2, { l2: 0 })).toThrow(/not a class index/);
    const nan = Float32Array.from(x);
    nan[7] = NaN;
    expect(() => trainSoftmaxHead(nan, 20, 3, y, 2, { l2: 0 })).toThrow(/NaN/);
    expect(() => trainSoftmaxHead(x, 20, 3, y, 2, { l2: -1 })).toThrow(/l2/);
  });
});

describe('softmax objective', () => {
  it('has a gradient that matches central finite differences (1 and 2 threads)', () => {
    const n = 37;
    const d = 5;
    const k = 5; // padded to 8 internally: exercises the second class chunk
    const { x, y } = blobs(n, d, k, 1, 9);
    const rand = rng(10);
    const sampleWeights = Float32Array.from({ length: n }, () => 0.2 + 2 * rand());
    const mean = Float32Array.from({ length: d }, () => 5 * rand());
    const std = Float32Array.from({ length: d }, () => 0.5 + 3 * rand());
    for (const threads of [1, 2]) {
      const obj = createSoftmaxObjective(x, n, d, y, k, { l2: 0.3, sampleWeights, mean, std, threads });
      try {
        expect(obj.threads).toBe(threads);
        const theta = Float64Array.from({ length: obj.dim }, () => rand() - 0.5);
        const grad = new Float64Array(obj.dim);
        obj.evaluate(theta, grad);
        const h = 1e-5;
        const scratch = new Float64Array(obj.dim);
        for (let p = 0; p < obj.dim; p++) {
          const plus = Float64Array.from(theta);
          const minus = Float64Array.from(theta);
          plus[p] += h;
          minus[p] -= h;
          const fd = (obj.evaluate(plus, scratch) - obj.evaluate(minus, scratch)) / (2 * h);
          expect(Math.abs(fd - grad[p])).toBeLessThan(1e-6 * Math.max(1, Math.abs(fd)));
        }
      } finally {
        obj.close();
      }
    }
  });

  it('equals the weighted mean cross-entropy plus the penalty, computed directly', () => {
    const n = 9;
    const d = 3;
    const k = 2;
    const { x, y } = blobs(n, d, k, 1, 11);
    const sampleWeights = Float32Array.from({ length: n }, (_, i) => 1 + (i % 3));
    const mean = new Float32Array([1, 2, 3]);
    const std = new Float32Array([2, 0.5, 4]);
    const obj = createSoftmaxObjective(x, n, d, y, k, { l2: 0.5, sampleWeights, mean, std });
    const theta = new Float64Array([0.3, -0.2, 0.1, -0.4, 0.5, 0.25, 0.7, -0.1]);
    let ce = 0;
    let wsum = 0;
    for (let i = 0; i < n; i++) {
      const z = [0, 1].map((c) => {
        let s = theta[k * d + c];
        for (let j = 0; j < d; j++) s += (theta[c * d + j] * (x[i * d + j] - mean[j])) / std[j];
        return s;
      });
      const lse = Math.log(Math.exp(z[0]) + Math.exp(z[1]));
      ce += sampleWeights[i] * (lse - z[y[i]]);
      wsum += sampleWeights[i];
    }
    let sq = 0;
    for (let p = 0; p < k * d; p++) sq += theta[p] ** 2;
    expect(obj.evaluate(theta, new Float64Array(obj.dim))).toBeCloseTo(ce / wsum + 0.25 * sq, 10);
  });
});

describe('foldStandardisation', () => {
  it('gives weights on raw features with the same logits', () => {
    const n = 50;
    const d = 8;
    const k = 3;
    const { x, y } = blobs(n, d, k, 0.6, 12);
    const head = trainSoftmaxHead(x, n, d, y, k, { l2: 1e-2 });
    const folded = foldStandardisation(head);
    const viaHead = headLogits(head, x, n);
    let worst = 0;
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < k; c++) {
        // One Gemm on raw features, as the ONNX graph computes it (Float32 weights).
        let z = folded.bias[c];
        for (let j = 0; j < d; j++) z += x[i * d + j] * folded.weight[c * d + j];
        // The same logit straight from the standardised definition.
        let s = head.bias[c];
        for (let j = 0; j < d; j++)
          s += (head.weight[c * d + j] * (x[i * d + j] - head.mean[j])) / head.std[j];
        worst = Math.max(worst, Math.abs(z - viaHead[i * k + c]), Math.abs(s - viaHead[i * k + c]));
      }
    }
    expect(worst).toBeLessThan(1e-4);
  });
});

describe('selectL2', () => {
  it('scores every candidate and picks the best on validation', () => {
    const d = 30;
    const k = 3;
    // Few noisy rows and many features: too little l2 overfits, too much underfits.
    const tr = blobs(90, d, k, 2.5, 13, 77);
    const va = blobs(600, d, k, 2.5, 14, 77);
    const train = { x: tr.x, n: 90, y: tr.y };
    const val = { x: va.x, n: 600, y: va.y };
    const grid = [1e-4, 1e-2, 1, 100];
    const res = selectL2(train, val, d, k, { grid });
    expect(res.table.map((r) => r.l2)).toEqual([100, 1, 1e-2, 1e-4]);
    const bestNll = Math.min(...res.table.map((r) => r.nll));
    expect(res.table.find((r) => r.l2 === res.l2)!.nll).toBe(bestNll);
    expect(res.l2).not.toBe(1e-4);
    expect(res.l2).not.toBe(100);
    expect(scoreHead(res.head, val).nll).toBeCloseTo(bestNll, 10);
    for (const r of res.table) {
      expect(r.accuracy).toBeGreaterThan(0);
      expect(r.accuracy).toBeLessThanOrEqual(1);
      expect(r.iterations).toBeGreaterThan(0);
    }
    const byAcc = selectL2(train, val, d, k, { grid, criterion: 'accuracy' });
    expect(byAcc.table.find((r) => r.l2 === byAcc.l2)!.accuracy).toBe(
      Math.max(...byAcc.table.map((r) => r.accuracy)),
    );
  });
});

describe('headLogits', () => {
  it('rejects features of the wrong size', () => {
    const head: LinearHead = {
      d: 2,
      k: 2,
      mean: new Float32Array(2),
      std: new Float32Array([1, 1]),
      weight: new Float32Array([1, 0, 0, 1]),
      bias: new Float32Array(2),
    };
    expect(Array.from(headLogits(head, new Float32Array([3, 4]), 1))).toEqual([3, 4]);
    expect(() => headLogits(head, new Float32Array(3), 1)).toThrow(DatasetError);
  });
});
