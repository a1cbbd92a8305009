import { describe, expect, it } from 'vitest';
import { checkReviewed, heldOutScore } from './reviewed.js';

const cells = (spec: Record<string, number>) =>
  Object.entries(spec).flatMap(([label, n]) => Array.from({ length: n }, () => ({ label })));

describe('checkReviewed', () => {
  it('names each class short of reviewed cells', () => {
    expect(() => checkReviewed(['a', 'b', 'c'], cells({ a: 12, b: 3 }), 10)).toThrow(
      'Too few reviewed cells: each class needs at least 10; b has 3, c has 0.',
    );
  });

  it('refuses reviews of other classes than the model knows, and ignores extra labels otherwise', () => {
    expect(() => checkReviewed(['a', 'b'], cells({ x: 20, y: 20 }), 2)).toThrow(
      /labelled x, y; the active model knows a, b: none in common/,
    );
    const ok = checkReviewed(['a', 'b'], cells({ a: 2, artefact: 1, b: 2 }), 2);
    expect(ok.ignored).toEqual({ artefact: 1 });
    expect(ok.usable).toEqual([0, 1, 3, 4]);
  });
});

describe('heldOutScore', () => {
  it('counts flagged cells and the wrong ones nobody is asked to look at', () => {
    // d = 2 features, identity head: the larger feature wins, confidence from its margin.
    const w = Float32Array.from([1, 0, 0, 1]);
    const b = new Float32Array(2);
    const x = Float32Array.from([5, 0, 0, 5, 5, 0, 0.1, 0]); // sure a, sure b, sure a, unsure a
    const y = Int32Array.from([0, 1, 1, 1]); // the third is a silent error, the fourth a flagged one
    const s = heldOutScore(x, y, w, b, 2, ['a', 'b'], 1, 0.9);
    expect(s).toMatchObject({ accuracy: 0.5, reviewRate: 0.25, silentErrors: 1, silentErrorRate: 0.25 });
    expect(s.perClass.b.support).toBe(3);
  });

  it('counts a cell flagged as unfamiliar as flagged, never as a silent error', () => {
    const w = Float32Array.from([1, 0, 0, 1]);
    const x = Float32Array.from([5, 0, 0, 5, 5, 0, 0.1, 0]);
    const y = Int32Array.from([0, 1, 1, 1]);
    const s = heldOutScore(
      x,
      y,
      w,
      new Float32Array(2),
      2,
      ['a', 'b'],
      1,
      0.9,
      Uint8Array.from([0, 0, 1, 0]),
    );
    expect(s).toMatchObject({ accuracy: 0.5, reviewRate: 0.5, silentErrors: 0, silentErrorRate: 0 });
  });
});
