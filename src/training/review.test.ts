import { describe, expect, it } from 'vitest';
import { checkDomain } from '../model/domain.js';
import { reviewCurve, reviewStats, type ReviewedAnswer } from './review.js';

const a = (correct: boolean, confidence: number, reasons: ReviewedAnswer['reviewReasons'] = []) => ({
  correct,
  confidence,
  needsReview: reasons.length > 0,
  reviewReasons: reasons,
});

describe('reviewStats', () => {
  it('counts silent errors as wrong and unflagged over all images', () => {
    const answers = [
      a(true, 0.9),
      a(true, 0.8),
      a(false, 0.95), // silent
      a(false, 0.4, ['low_confidence']),
      a(false, 0.9, ['unfamiliar_cell', 'unfamiliar_image']),
      a(true, 0.5, ['low_confidence']),
      a(false, 0, ['no_cell']),
      a(true, 0.99),
    ];
    const s = reviewStats(answers);
    expect(s.n).toBe(8);
    expect(s.rate).toBe(4 / 8);
    expect(s.acceptedAccuracy).toBe(3 / 4);
    expect(s.silentErrorRate).toBe(1 / 8);
    expect(s.byReason.low_confidence).toBe(2 / 8);
    expect(s.byReason.unfamiliar_cell).toBe(1 / 8);
    expect(s.byReason.no_cell).toBe(1 / 8);
    expect(s.byReason.damaged_image).toBe(0);
  });

  it('has no accepted accuracy when everything is flagged', () => {
    expect(reviewStats([a(true, 0.3, ['low_confidence'])]).acceptedAccuracy).toBeNaN();
  });
});

describe('reviewCurve', () => {
  it('trades review rate for accepted accuracy as the confidence threshold rises, other reasons kept', () => {
    const answers = [a(true, 0.95), a(false, 0.6), a(true, 0.7), a(false, 0.9, ['unfamiliar_image'])];
    const curve = reviewCurve(answers, 10);
    // Threshold 0: only the unfamiliar image is flagged; 2 of 3 accepted are right.
    expect(curve[0]).toEqual({ threshold: 0, reviewRate: 0.25, acceptedAccuracy: 2 / 3 });
    // Threshold 0.7: the 0.6 answer joins the review; the rest are right.
    expect(curve.find((p) => p.threshold === 0.7)).toEqual({
      threshold: 0.7,
      reviewRate: 0.5,
      acceptedAccuracy: 1,
    });
    // At 1 everything is flagged: no point.
    expect(curve.at(-1)!.threshold).toBeLessThan(1);
    for (let i = 1; i < curve.length; i++)
      expect(curve[i].reviewRate).toBeGreaterThanOrEqual(curve[i - 1].reviewRate);
  });
});

describe('checkDomain', () => {
  const at = (image: number) => ({ distance: { cell: 0.5, image } });

  it('calls a batch familiar when few images lie beyond the per-image threshold', () => {
    const d = checkDomain([0.2, 0.3, 0.4, 0.5, 1.2].map(at))!;
    expect(d.n).toBe(5);
    expect(d.score).toBe(0.4);
    expect(d.unfamiliarShare).toBe(0.2);
    expect(d.unfamiliar).toBe(false);
    expect(d.summary).toMatch(/look like the labs/);
  });

  it('calls it unfamiliar, and says what to do, when many do', () => {
    const d = checkDomain([0.4, 1.5, 2, 3].map(at))!;
    expect(d.score).toBe(1.75);
    expect(d.unfamiliar).toBe(true);
    expect(d.summary).toMatch(/differ from every lab/);
    expect(d.summary).toMatch(/train --from/);
  });

  it('is undefined for a model without familiarity checks', () => {
    expect(checkDomain([{}, {}])).toBeUndefined();
  });
});
