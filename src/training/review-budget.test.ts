import { describe, expect, it } from 'vitest';
import { capReviewThreshold, type BudgetRow } from './review-budget.js';

const rows = (source: number, confidences: number[], flagged = 0): BudgetRow[] =>
  confidences.map((confidence, i) => ({ confidence, flagged: i < flagged, source }));

describe('capReviewThreshold', () => {
  it('keeps a threshold that stays within budget on every lab', () => {
    const r = capReviewThreshold(
      rows(0, [0.5, 0.9, 0.95, 0.97, 0.99, 0.99, 0.99, 0.99, 0.99, 0.99]),
      ['a'],
      0.6,
      0.1,
    );
    expect(r.threshold).toBe(0.6); // flags 1 of 10
    expect(r.reviewRate).toEqual({ a: 0.1 });
  });

  it('lowers it until the weakest lab is within budget, counting the other reasons first', () => {
    // Lab b: 20 rows, 1 already flagged by familiarity, confidences 0.30..0.87: budget 2 → 1 more by confidence.
    const b = rows(
      1,
      Array.from({ length: 20 }, (_, i) => 0.3 + 0.03 * i),
      1,
    );
    const a = rows(
      0,
      Array.from({ length: 10 }, () => 0.99),
    );
    const r = capReviewThreshold([...a, ...b], ['a', 'b'], 0.8, 0.1);
    // Open rows of b start at 0.33: one below the threshold means threshold = the second, 0.36.
    expect(r.threshold).toBeCloseTo(0.36, 10);
    expect(r.reviewRate.b).toBe(0.1);
    expect(r.reviewRate.a).toBe(0);
  });

  it('turns low-confidence flagging off when the other reasons use the whole budget', () => {
    expect(
      capReviewThreshold(rows(0, [0.2, 0.3, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9], 1), ['a'], 0.7, 0.1)
        .threshold,
    ).toBe(0);
  });
});
