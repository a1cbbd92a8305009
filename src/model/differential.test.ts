import { describe, expect, it } from 'vitest';
import { differential } from './differential.js';
import type { ImagePrediction } from './types.js';

const cell = (label: string) => ({
  label,
  confidence: 0.9,
  probabilities: {},
  needsReview: false,
  reviewReasons: [],
  box: { x: 0, y: 0, width: 1, height: 1, score: 1 },
});
const image = (labels: string[], label: string | null = labels[0] ?? null): ImagePrediction => ({
  label,
  confidence: 0.9,
  probabilities: {},
  needsReview: false,
  reviewReasons: [],
  cells: labels.map(cell),
});

describe('differential', () => {
  const eight = [
    'eosinophil',
    'lymphocyte',
    'monocyte',
    'neutrophil',
    'basophil',
    'ig',
    'erythroblast',
    'platelet',
  ];

  it('counts white cells in the percentages, erythroblasts and platelets per 100 white cells beside them', () => {
    const d = differential(eight, [
      image(['neutrophil', 'neutrophil', 'platelet']),
      image(['lymphocyte', 'erythroblast']),
      image(['ig']),
      image([], null), // no cell found: counts nothing
    ]);
    expect(d.counts).toMatchObject({
      neutrophil: 2,
      lymphocyte: 1,
      ig: 1,
      erythroblast: 1,
      platelet: 1,
      basophil: 0,
    });
    expect(d.total).toBe(4);
    expect(Object.keys(d.percentages)).toEqual([
      'eosinophil',
      'lymphocyte',
      'monocyte',
      'neutrophil',
      'basophil',
      'ig',
    ]);
    expect(d.percentages.neutrophil).toBe(50);
    expect(Object.values(d.percentages).reduce((a, b) => a + b, 0)).toBeCloseTo(100, 10);
    expect(d.per100White).toEqual({ erythroblast: 25, platelet: 25 });
  });

  it('is the plain differential for a four-class model, and all zeros with no white cell', () => {
    const four = eight.slice(0, 4);
    const d = differential(four, [image(['monocyte'])]);
    expect(d).toEqual({
      counts: { eosinophil: 0, lymphocyte: 0, monocyte: 1, neutrophil: 0 },
      percentages: { eosinophil: 0, lymphocyte: 0, monocyte: 100, neutrophil: 0 },
      total: 1,
      per100White: {},
    });
    expect(differential(eight, [image(['platelet'])]).per100White).toEqual({ erythroblast: 0, platelet: 0 });
  });
});
