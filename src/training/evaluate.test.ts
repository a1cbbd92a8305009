/** evaluateModel's scoring on a scripted model: no network, so the numbers can be worked by hand. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { Classifier } from '../model/classifier.js';

/*
 * Classes [a, b, c]; per file what the scripted model answers (probabilities a, b, c):
 *
 *   a/1.jpg  0.83 0.10 0.07  → a, right, conf 0.83 (ECE bin 12)
 *   a/2.jpg  no cell         → no answer
 *   a/3.jpg  0.30 0.62 0.08  → b, wrong, conf 0.62 (bin 9)
 *   b/1.jpg  0.05 0.91 0.04  → b, right, conf 0.91 (bin 13)
 *   b/2.jpg  no cell         → no answer
 *   c/1.jpg  unreadable      → not scored
 *   c/2.jpg  0.16 0.10 0.74  → c, right, conf 0.74 (bin 11)
 *   d/1.jpg  (class unknown to the model: skipped), a/notes.txt (not an image: skipped)
 *
 * n = 6, 3 right → accuracy 1/2; confusion a [1 1 0], b [0 1 0], c [0 0 1], no answer [1 1 0]
 * a: P 1/1, R 1/3, F1 1/2   b: P 1/2, R 1/2, F1 1/2   c: P 1, R 1, F1 1   → macro-F1 2/3
 * ECE over the 4 answered (one per bin): (0.17 + 0.62 + 0.09 + 0.26) / 4 = 0.285
 */
vi.mock('../model/analyzer.js', async () => {
  const { InvalidImageError } = await import('../errors.js');
  const answers: Record<string, number[] | null | 'unreadable'> = {
    'a/1.jpg': [0.83, 0.1, 0.07],
    'a/2.jpg': null,
    'a/3.jpg': [0.3, 0.62, 0.08],
    'b/1.jpg': [0.05, 0.91, 0.04],
    'b/2.jpg': null,
    'c/1.jpg': 'unreadable',
    'c/2.jpg': [0.16, 0.1, 0.74],
    'd/1.jpg': [0.9, 0.05, 0.05], // a class the model does not know: wrong whatever it says
  };
  return {
    analyzeImage: async (_classifier: unknown, path: string) => {
      const a = answers[`${basename(dirname(path))}/${basename(path)}`];
      if (a === 'unreadable') throw new InvalidImageError('corrupt or truncated');
      if (a === null)
        return {
          label: null,
          confidence: 0,
          probabilities: {},
          needsReview: true,
          reviewReasons: ['no_cell'],
          cells: [],
        };
      const probabilities = { a: a[0], b: a[1], c: a[2] };
      const label = ['a', 'b', 'c'][a.indexOf(Math.max(...a))];
      return {
        label,
        confidence: Math.max(...a),
        probabilities,
        needsReview: false,
        reviewReasons: [],
        cells: [],
      };
    },
  };
});

// The suite shares one module registry between files (vitest.config.ts, isolate: false): evaluate.js may be
// loaded already, bound to the real analyzer. A fresh registry makes it import the scripted one above, and
// another after this file keeps the script away from the files that follow.
vi.resetModules();
const { evaluateModel } = await import('./evaluate.js');
afterAll(() => {
  vi.doUnmock('../model/analyzer.js');
  vi.resetModules();
});

describe('evaluateModel with images where no cell is found', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hv-evaluate-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  for (const f of [
    'a/1.jpg',
    'a/2.jpg',
    'a/3.jpg',
    'a/notes.txt',
    'b/1.jpg',
    'b/2.jpg',
    'c/1.jpg',
    'c/2.jpg',
  ]) {
    mkdirSync(join(dir, dirname(f)), { recursive: true });
    writeFileSync(join(dir, f), '');
  }
  mkdirSync(join(dir, 'd'));
  writeFileSync(join(dir, 'd', '1.jpg'), '');
  const classifier = { classes: ['a', 'b', 'c'] } as unknown as Classifier;

  it('scores them as errors of their true class, outside the confusion matrix and calibration', async () => {
    const r = await evaluateModel(classifier, [dir], { concurrency: 2 });
    expect(r.n).toBe(6);
    expect(r.noCell).toBe(2);
    expect(r.unanswered).toBe(2);
    expect(r.noAnswer).toEqual([1, 1, 0]);
    expect(r.unreadable.map((u) => u.path)).toEqual([join(dir, 'c', '1.jpg')]);
    expect(r.skipped).toEqual({ nonImage: 1, unknownClass: { d: 1 } });
    expect(r.confusionMatrix).toEqual([
      [1, 1, 0],
      [0, 1, 0],
      [0, 0, 1],
    ]);
    expect(r.accuracy).toBeCloseTo(0.5, 12);
    expect(r.perClass.a.precision).toBe(1);
    expect(r.perClass.a.recall).toBeCloseTo(1 / 3, 12);
    expect(r.perClass.a.f1).toBeCloseTo(0.5, 12);
    expect(r.perClass.a.support).toBe(3);
    expect(r.perClass.b).toEqual({ precision: 0.5, recall: 0.5, f1: 0.5, support: 2 });
    expect(r.perClass.c).toEqual({ precision: 1, recall: 1, f1: 1, support: 1 });
    expect(r.macroF1).toBeCloseTo(2 / 3, 12);
    expect(r.ece).toBeCloseTo(0.285, 6);
    expect(r.bins.reduce((a, b) => a + b.count, 0)).toBe(4);
    expect(r.bins.filter((b) => b.count > 0).map((b) => Math.round(b.lo * 15))).toEqual([9, 11, 12, 13]);
    // Review: the two no-cell images are flagged; a/3 (called b) is the one silent error.
    expect(r.review).toMatchObject({ n: 6, rate: 2 / 6, acceptedAccuracy: 3 / 4, silentErrorRate: 1 / 6 });
    expect(r.review.byReason.no_cell).toBe(2 / 6);
    expect(r.unknownClasses).toEqual({});
  });

  it('with scoreUnknown, a class the model does not know counts in review, never in accuracy', async () => {
    const r = await evaluateModel(classifier, [dir], { concurrency: 2, scoreUnknown: true });
    expect(r.n).toBe(6);
    expect(r.accuracy).toBeCloseTo(0.5, 12);
    expect(r.unknownClasses).toEqual({ d: { n: 1, flagged: 0 } });
    // d/1 is confidently wrong and unflagged: a second silent error, over 7 images now.
    expect(r.review).toMatchObject({ n: 7, silentErrorRate: 2 / 7 });
  });
});
