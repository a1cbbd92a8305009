import { describe, expect, it } from 'vitest';
import { chooseReviewedRecipe, FINE_TUNE_MIN_CELLS_PER_CLASS } from './reviewed-choice.js';

const cells = (spec: Record<string, number>) =>
  Object.entries(spec).flatMap(([label, n]) => Array.from({ length: n }, () => ({ label })));

describe('chooseReviewedRecipe', () => {
  it('fine-tunes only when every class has the minimum, and says which class was short', () => {
    const tflite = '/weights/mobilenet.tflite';
    expect(FINE_TUNE_MIN_CELLS_PER_CLASS).toBe(200);
    expect(chooseReviewedRecipe(['a', 'b'], cells({ a: 200, b: 200 }), { tflite })).toMatchObject({
      kind: 'fine-tune',
      reason: expect.stringContaining('every class has at least 200 reviewed cells'),
    });
    expect(chooseReviewedRecipe(['a', 'b'], cells({ a: 500, b: 199 }), { tflite })).toEqual({
      kind: 'head',
      reason:
        'A new head on the frozen backbone: b has 199 reviewed cells, fewer than the 200 of every class ' +
        'that fine-tuning needs.',
    });
    // A class with no reviewed cell at all is the shortest; labels of other classes do not count.
    expect(
      chooseReviewedRecipe(['a', 'b', 'c'], cells({ a: 300, b: 300, x: 900 }), { tflite }).reason,
    ).toContain('c has 0 reviewed cells');
  });

  it('takes its threshold from the settings', () => {
    const few = cells({ a: 12, b: 12 });
    expect(chooseReviewedRecipe(['a', 'b'], few, { tflite: 't', minCellsPerClass: 12 }).kind).toBe(
      'fine-tune',
    );
    expect(chooseReviewedRecipe(['a', 'b'], few, { tflite: 't', minCellsPerClass: 13 }).kind).toBe('head');
  });

  it('keeps the frozen head, saying why, when no TFLite weights are configured', () => {
    const r = chooseReviewedRecipe(['a', 'b'], cells({ a: 400, b: 400 }), { tflite: null });
    expect(r.kind).toBe('head');
    expect(r.reason).toContain('none are configured (BACKBONE_TFLITE)');
  });
});
