import { describe, expect, it } from 'vitest';
import { fitTemperature, MIN_TEMPERATURE, softmax } from './calibration.js';
import { createRng as rng } from '../imaging/random.js';

function normal(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

/**
 * Labels drawn from softmax(u) for "true" logits u, then the logits reported as scale·u: a model
 * over-confident by exactly `scale`, so the best temperature is close to `scale`.
 */
function overconfident(n: number, k: number, scale: number, seed: number) {
  const rand = rng(seed);
  const logits = new Float32Array(n * k);
  const labels = new Int32Array(n);
  const u = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    let sum = 0;
    for (let c = 0; c < k; c++) {
      u[c] = 1.5 * normal(rand);
      sum += Math.exp(u[c]);
    }
    let r = rand() * sum;
    let y = k - 1;
    for (let c = 0; c < k; c++) {
      r -= Math.exp(u[c]);
      if (r <= 0) {
        y = c;
        break;
      }
    }
    labels[i] = y;
    for (let c = 0; c < k; c++) logits[i * k + c] = scale * u[c];
  }
  return { logits, labels };
}

/** Mean negative log-likelihood of softmax(logits / T) at the labels. */
function meanNll(logits: Float32Array, labels: Int32Array, k: number, T = 1): number {
  const p = softmax(logits, k, T);
  let sum = 0;
  labels.forEach((y, i) => (sum -= Math.log(p[i * k + y])));
  return sum / labels.length;
}

describe('softmax', () => {
  it('gives rows summing to 1 and stays finite for huge logits', () => {
    const p = softmax(new Float32Array([1000, 0, -1000, 1, 2, 3]), 3);
    expect(Array.from(p.subarray(0, 3))).toEqual([1, 0, 0]);
    const e = [Math.exp(1), Math.exp(2), Math.exp(3)];
    const s = e[0] + e[1] + e[2];
    for (let c = 0; c < 3; c++) expect(p[3 + c]).toBeCloseTo(e[c] / s, 6);
  });

  it('flattens with T > 1 and sharpens with T < 1 without changing the arg-max', () => {
    const z = new Float32Array([2, 1, 0]);
    const p1 = softmax(z, 3);
    const hot = softmax(z, 3, 4);
    const cold = softmax(z, 3, 0.25);
    expect(hot[0]).toBeLessThan(p1[0]);
    expect(cold[0]).toBeGreaterThan(p1[0]);
    expect(hot[0]).toBeGreaterThan(hot[1]);
    // softmax(z / 2) by hand: exp(1), exp(0.5), exp(0)
    const s = Math.exp(1) + Math.exp(0.5) + 1;
    expect(softmax(z, 3, 2)[0]).toBeCloseTo(Math.exp(1) / s, 6);
  });
});

describe('fitTemperature', () => {
  it('recovers the over-confidence scale of a known model and lowers the NLL', () => {
    for (const scale of [3, 0.5]) {
      const { logits, labels } = overconfident(20000, 4, scale, 7);
      const T = fitTemperature(logits, labels, 4);
      expect(T).toBeGreaterThan(scale * 0.93);
      expect(T).toBeLessThan(scale * 1.07);
      const before = meanNll(logits, labels, 4);
      const after = meanNll(logits, labels, 4, T);
      expect(after).toBeLessThanOrEqual(before);
      // It is the minimum: nudging T either way does not help.
      expect(meanNll(logits, labels, 4, T * 1.05)).toBeGreaterThan(after);
      expect(meanNll(logits, labels, 4, T / 1.05)).toBeGreaterThan(after);
    }
  });

  it('stops at the lower bound for perfectly separated logits', () => {
    const logits = new Float32Array([5, 0, 0, 5, 4, 1]);
    expect(fitTemperature(logits, [0, 1, 0], 2)).toBe(MIN_TEMPERATURE);
  });

  it('rejects labels that do not match the logits', () => {
    expect(() => fitTemperature(new Float32Array(6), [0, 1], 2)).toThrow(/labels/);
    expect(() => fitTemperature(new Float32Array(4), [0, 2], 2)).toThrow(/class index/);
  });
});
