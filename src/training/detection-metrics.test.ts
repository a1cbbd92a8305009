import { describe, expect, it } from 'vitest';
import type { Box } from '../imaging/types.js';
import { detectionMetrics, iou, matchDetections } from './detection-metrics.js';

const box = (x: number, y: number, width: number, height: number, score = 1): Box => ({
  x,
  y,
  width,
  height,
  score,
});

describe('iou', () => {
  it('matches hand-computed overlaps', () => {
    expect(iou(box(0, 0, 10, 10), box(0, 0, 10, 10))).toBe(1);
    // 5×10 overlap = 50; union 100 + 100 − 50 = 150.
    expect(iou(box(0, 0, 10, 10), box(5, 0, 10, 10))).toBeCloseTo(1 / 3, 12);
    // 5×5 = 25; union 200 − 25 = 175.
    expect(iou(box(0, 0, 10, 10), box(5, 5, 10, 10))).toBeCloseTo(25 / 175, 12);
    expect(iou(box(0, 0, 10, 10), box(10, 0, 10, 10))).toBe(0);
    expect(iou(box(0, 0, 0, 0), box(0, 0, 0, 0))).toBe(0);
  });
});

describe('matchDetections', () => {
  it('matches greedily by score, one-to-one, at IoU ≥ 0.5', () => {
    const truth = [box(0, 0, 10, 10)];
    // Both overlap the truth; the higher-scored one takes it even though the other fits better.
    const dets = [box(0, 0, 10, 8, 0.6), box(0, 0, 10, 10, 0.4)];
    const m = matchDetections(dets, truth);
    expect(m.matches).toEqual([{ detection: 0, truth: 0, iou: 0.8 }]);
    expect([m.truePositives, m.falsePositives, m.falseNegatives]).toEqual([1, 1, 0]);
  });

  it('does not match below the threshold', () => {
    const m = matchDetections([box(5, 0, 10, 10)], [box(0, 0, 10, 10)]);
    expect([m.truePositives, m.falsePositives, m.falseNegatives]).toEqual([0, 1, 1]);
  });
});

describe('detectionMetrics', () => {
  it('pools counts over images and averages IoU over matches', () => {
    const m = detectionMetrics([
      // TP with IoU 1, plus one FP.
      { detections: [box(0, 0, 10, 10, 0.9), box(50, 50, 10, 10, 0.3)], truth: [box(0, 0, 10, 10)] },
      // TP with IoU 0.8 (10×8 inside 10×10), and one missed truth.
      { detections: [box(0, 0, 10, 8)], truth: [box(0, 0, 10, 10), box(100, 100, 20, 20)] },
      // Empty image, nothing found: counts nothing.
      { detections: [], truth: [] },
    ]);
    // TP 2, FP 1, FN 1 → precision 2/3, recall 2/3, mean IoU (1 + 0.8) / 2.
    expect(m.precision).toBeCloseTo(2 / 3, 12);
    expect(m.recall).toBeCloseTo(2 / 3, 12);
    expect(m.meanIoU).toBeCloseTo(0.9, 12);
    expect(m.n).toBe(3);
    expect([m.truePositives, m.falsePositives, m.falseNegatives]).toEqual([2, 1, 1]);
  });

  it('has defined values when nothing is found or nothing is there', () => {
    const none = detectionMetrics([{ detections: [], truth: [box(0, 0, 5, 5)] }]);
    expect([none.precision, none.recall, none.meanIoU]).toEqual([1, 0, 0]);
    const empty = detectionMetrics([{ detections: [box(0, 0, 5, 5)], truth: [] }]);
    expect([empty.precision, empty.recall]).toEqual([0, 1]);
  });
});
