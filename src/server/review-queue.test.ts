import { describe, expect, it } from 'vitest';
import { reviewQueue } from './specimens.js';

describe('the specimen review queue', () => {
  it('puts cells unlike what the model knows before merely uncertain ones, each group by confidence', () => {
    const cells = [
      { needsReview: true, reviewReasons: ['low_confidence'], confidence: 0.4 },
      { needsReview: false, reviewReasons: [], confidence: 0.99 },
      { needsReview: true, reviewReasons: ['unfamiliar_cell'], confidence: 0.97 },
      { needsReview: true, reviewReasons: ['low_confidence'], confidence: 0.3 },
      { needsReview: true, reviewReasons: ['damaged_image'], confidence: 0.9 },
      // A reviewed cell has left the queue although the model flagged it.
      { needsReview: false, reviewReasons: ['unfamiliar_cell'], confidence: 0.5 },
    ] as const;
    expect(reviewQueue(cells.map((c) => ({ ...c, reviewReasons: [...c.reviewReasons] })))).toEqual([
      4, 2, 3, 0,
    ]);
  });
});
