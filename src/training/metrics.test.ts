import { describe, expect, it } from 'vitest';
import { DatasetError } from '../errors.js';
import { evaluatePredictions, expectedCalibrationError, reliabilityBins } from './metrics.js';

/*
 * Hand-worked example, classes [A, B, C, D] (D never occurs and is never predicted):
 *
 *   i  true  probs (A, B, C, D)        pred        conf  correct  ECE bin (b/15, (b+1)/15]
 *   0  A     0.90 0.05 0.05 0          A           0.90  yes      13
 *   1  A     0.65 0.25 0.10 0          A           0.65  yes       9
 *   2  A     0.20 0.70 0.10 0          B           0.70  no       10
 *   3  B     0.10 0.85 0.05 0          B           0.85  yes      12
 *   4  B     0.30 0.25 0.45 0          C           0.45  no        6
 *   5  B     0.05 0.95 0.00 0          B           0.95  yes      14
 *   6  B     0.50 0.50 0.00 0          A (tie→low) 0.50  no        7
 *   7  A     0.35 0.30 0.35 0          A (tie→low) 0.35  yes       5
 *
 * Confusion (rows true, cols predicted):  A [3 1 0 0]   B [1 2 1 0]   C [0 0 0 0]   D [0 0 0 0]
 * accuracy = 5/8 = 0.625
 * A: tp 3, support 4, predicted 4 → P 3/4, R 3/4, F1 3/4
 * B: tp 2, support 4, predicted 3 → P 2/3, R 1/2, F1 = 2·(1/3)/(7/6) = 4/7
 * C: tp 0, support 0, predicted 1 → P 0, R 0, F1 0 (counts in macro-F1: a false alarm)
 * D: support 0, predicted 0 → F1 0, left out of macro-F1
 * macro-F1 = (3/4 + 4/7 + 0) / 3 = 37/84
 * Every sample sits in its own bin, so ECE = mean |correct − conf|
 *   = (0.10 + 0.35 + 0.70 + 0.15 + 0.45 + 0.05 + 0.50 + 0.65) / 8 = 2.95 / 8 = 0.36875
 */
const classes = ['A', 'B', 'C', 'D'];
const truth = [0, 0, 0, 1, 1, 1, 1, 0];
// prettier-ignore
const probs = new Float32Array([
  0.9, 0.05, 0.05, 0,
  0.65, 0.25, 0.1, 0,
  0.2, 0.7, 0.1, 0,
  0.1, 0.85, 0.05, 0,
  0.3, 0.25, 0.45, 0,
  0.05, 0.95, 0, 0,
  0.5, 0.5, 0, 0,
  0.35, 0.3, 0.35, 0,
]);

describe('evaluatePredictions', () => {
  const m = evaluatePredictions(truth, probs, classes);

  it('counts the confusion matrix with rows = true, columns = predicted', () => {
    expect(m.confusionMatrix).toEqual([
      [3, 1, 0, 0],
      [1, 2, 1, 0],
      [0, 0, 0, 0],
      [0, 0, 0, 0],
    ]);
    expect(m.n).toBe(8);
    expect(m.classes).toEqual(classes);
    expect(m.noAnswer).toEqual([0, 0, 0, 0]);
    expect(m.unanswered).toBe(0);
  });

  it('matches the hand-computed accuracy, per-class scores and macro-F1', () => {
    expect(m.accuracy).toBeCloseTo(0.625, 12);
    expect(m.perClass.A).toEqual({ precision: 0.75, recall: 0.75, f1: 0.75, support: 4 });
    expect(m.perClass.B.precision).toBeCloseTo(2 / 3, 12);
    expect(m.perClass.B.recall).toBeCloseTo(0.5, 12);
    expect(m.perClass.B.f1).toBeCloseTo(4 / 7, 12);
    expect(m.perClass.B.support).toBe(4);
    expect(m.perClass.C).toEqual({ precision: 0, recall: 0, f1: 0, support: 0 });
    expect(m.perClass.D).toEqual({ precision: 0, recall: 0, f1: 0, support: 0 });
    expect(m.macroF1).toBeCloseTo(37 / 84, 12);
  });

  it('matches the hand-computed ECE', () => {
    expect(m.ece).toBeCloseTo(0.36875, 6);
  });

  it('accepts Int32Array labels', () => {
    expect(evaluatePredictions(Int32Array.from(truth), probs, classes)).toEqual(m);
  });

  it('rejects mismatched shapes, bad labels and empty input with a DatasetError', () => {
    expect(() => evaluatePredictions(truth, probs.subarray(4), classes)).toThrow(DatasetError);
    expect(() => evaluatePredictions([0, 4], new Float32Array(8), classes)).toThrow(/not a class index/);
    expect(() => evaluatePredictions([], new Float32Array(0), classes)).toThrow(/No samples/);
    expect(() => evaluatePredictions([0], new Float32Array(2), ['x', 'x'])).toThrow(/unique/);
  });
});

/*
 * The same eight samples plus two the model left unanswered: 8 (true A) and 9 (true C). Their rows are
 * ignored: row 8 would be a confident, correct A and row 9 is NaN.
 *
 * n = 10, correct still 5 → accuracy 5/10 = 0.5
 * Confusion unchanged; noAnswer column (A, B, C, D) = [1, 0, 1, 0]
 * A: tp 3, support 5, predicted 4 → P 3/4 (unchanged), R 3/5, F1 = 2·(9/20)/(27/20) = 2/3
 * B: unchanged → P 2/3, R 1/2, F1 4/7, support 4
 * C: support 1 (its only sample unanswered), predicted 1 → P 0, R 0, F1 0
 * D: support 0, predicted 0 → left out of macro-F1
 * macro-F1 = (2/3 + 4/7 + 0) / 3 = 26/63
 * ECE over the 8 answered samples only: 0.36875, with 2 excluded
 */
describe('evaluatePredictions with unanswered samples', () => {
  const truth10 = [...truth, 0, 2];
  const probs10 = new Float32Array([...probs, 1, 0, 0, 0, NaN, NaN, NaN, NaN]);
  const unanswered = [...truth.map(() => false), true, true];
  const m = evaluatePredictions(truth10, probs10, classes, { unanswered });

  it('counts them as errors of their true class in a no-answer column, not as predictions', () => {
    expect(m.n).toBe(10);
    expect(m.accuracy).toBeCloseTo(0.5, 12);
    expect(m.confusionMatrix).toEqual(evaluatePredictions(truth, probs, classes).confusionMatrix);
    expect(m.noAnswer).toEqual([1, 0, 1, 0]);
    expect(m.unanswered).toBe(2);
    expect(m.perClass.A.precision).toBeCloseTo(0.75, 12);
    expect(m.perClass.A.recall).toBeCloseTo(0.6, 12);
    expect(m.perClass.A.f1).toBeCloseTo(2 / 3, 12);
    expect(m.perClass.A.support).toBe(5);
    expect(m.perClass.B.f1).toBeCloseTo(4 / 7, 12);
    expect(m.perClass.C).toEqual({ precision: 0, recall: 0, f1: 0, support: 1 });
    expect(m.perClass.D).toEqual({ precision: 0, recall: 0, f1: 0, support: 0 });
    expect(m.macroF1).toBeCloseTo(26 / 63, 12);
  });

  it('leaves them out of ECE and the reliability bins', () => {
    expect(m.ece).toBeCloseTo(0.36875, 6);
    const bins = reliabilityBins(truth10, probs10, 4, { unanswered });
    expect(bins).toEqual(reliabilityBins(truth, probs, 4));
    expect(bins.reduce((a, b) => a + b.count, 0)).toBe(8);
  });

  it('scores a run with no answer at all instead of failing', () => {
    const none = evaluatePredictions([0, 1, 1], new Float32Array(6).fill(NaN), ['x', 'y'], {
      unanswered: [true, true, true],
    });
    expect(none).toMatchObject({ accuracy: 0, macroF1: 0, ece: 0, n: 3, noAnswer: [1, 2], unanswered: 3 });
    expect(none.confusionMatrix).toEqual([
      [0, 0],
      [0, 0],
    ]);
  });

  it('rejects flags that do not cover every sample', () => {
    expect(() => evaluatePredictions(truth, probs, classes, { unanswered: [true] })).toThrow(
      /cover 1 samples, not 8/,
    );
  });
});

describe('reliabilityBins', () => {
  /*
   * Two classes, bins shared:
   *   conf 0.90 correct, 0.92 wrong  → bin 13 (13/15, 14/15]: confidence 0.91, accuracy 0.5
   *   conf 0.55 correct, 0.58 correct → bin 8 (8/15, 9/15]:   confidence 0.565, accuracy 1
   * ECE = (2/4)·|0.5 − 0.91| + (2/4)·|1 − 0.565| = 0.205 + 0.2175 = 0.4225
   */
  const t = [0, 1, 1, 0];
  const p = new Float32Array([0.9, 0.1, 0.92, 0.08, 0.45, 0.55, 0.58, 0.42]);

  it('averages confidence and accuracy within each bin', () => {
    const bins = reliabilityBins(t, p, 2);
    expect(bins).toHaveLength(15);
    expect(bins[0].lo).toBe(0);
    expect(bins[14].hi).toBe(1);
    expect(bins[13].count).toBe(2);
    expect(bins[13].confidence).toBeCloseTo(0.91, 6);
    expect(bins[13].accuracy).toBe(0.5);
    expect(bins[8].count).toBe(2);
    expect(bins[8].confidence).toBeCloseTo(0.565, 6);
    expect(bins[8].accuracy).toBe(1);
    const others = bins.filter((_, b) => b !== 8 && b !== 13);
    expect(others.every((b) => b.count === 0 && b.confidence === 0 && b.accuracy === 0)).toBe(true);
    expect(expectedCalibrationError(bins)).toBeCloseTo(0.4225, 6);
    expect(evaluatePredictions(t, p, ['x', 'y']).ece).toBeCloseTo(0.4225, 6);
  });

  it('puts confidence 1 in the last bin and honours a custom bin count', () => {
    const bins = reliabilityBins([0, 0], new Float32Array([1, 0, 0.3, 0.7]), 2, { bins: 4 });
    expect(bins.map((b) => b.count)).toEqual([0, 0, 1, 1]);
    expect(bins[3].accuracy).toBe(1);
    expect(bins[2].accuracy).toBe(0);
  });
});
