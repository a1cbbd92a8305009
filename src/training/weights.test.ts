import { describe, expect, it } from 'vitest';
import { DatasetError } from '../errors.js';
import { balanceWeights, type WeightItem } from './weights.js';

function items(spec: [sourceName: string, labelIndex: number, n: number][]): WeightItem[] {
  const source = new Map<string, number>();
  return spec.flatMap(([name, labelIndex, n]) => {
    if (!source.has(name)) source.set(name, source.size);
    return Array.from({ length: n }, () => ({ sourceName: name, source: source.get(name)!, labelIndex }));
  });
}

function totals(xs: WeightItem[], w: Float32Array, key: (x: WeightItem) => string) {
  const t: Record<string, number> = {};
  xs.forEach((x, i) => (t[key(x)] = (t[key(x)] ?? 0) + w[i]));
  return t;
}

describe('balanceWeights', () => {
  // Hand example: N = 10. Source A: class 0 ×4, class 1 ×1 (C_A = 2). Source B: class 0 ×5 (C_B = 1).
  const xs = items([
    ['A', 0, 4],
    ['A', 1, 1],
    ['B', 0, 5],
  ]);

  it('matches the formula on a small hand example (equal sources)', () => {
    const w = balanceWeights(xs);
    // W_A = W_B = 1/2. A/0: 10·½/(2·4) = 0.625; A/1: 10·½/(2·1) = 2.5; B/0: 10·½/(1·5) = 1.
    expect([...w]).toEqual([0.625, 0.625, 0.625, 0.625, 2.5, 1, 1, 1, 1, 1]);
    expect(w.reduce((a, b) => a + b, 0)).toBeCloseTo(10, 5);
    expect(totals(xs, w, (x) => `${x.sourceName}/${x.labelIndex}`)).toEqual({
      'A/0': 2.5,
      'A/1': 2.5,
      'B/0': 5,
    });
  });

  it('gives each source its share when weights are set (by name)', () => {
    const w = balanceWeights(xs, { sourceWeights: { A: 3, B: 1 } });
    // W_A = 3/4: A/0 = 10·¾/(2·4) = 0.9375, A/1 = 3.75; W_B = ¼: B/0 = 0.5.
    expect(w[0]).toBeCloseTo(0.9375, 6);
    expect(w[4]).toBeCloseTo(3.75, 6);
    expect(w[5]).toBeCloseTo(0.5, 6);
    const t = totals(xs, w, (x) => x.sourceName!);
    expect(t.A).toBeCloseTo(7.5, 5);
    expect(t.B).toBeCloseTo(2.5, 5);
  });

  it('zeroes a source with weight 0 and knows sources by index without names', () => {
    const w = balanceWeights(xs, { sourceWeights: { B: 0 } });
    expect([...w.slice(5)]).toEqual([0, 0, 0, 0, 0]);
    expect(w.reduce((a, b) => a + b, 0)).toBeCloseTo(10, 5);
    const anon = xs.map(({ source, labelIndex }) => ({ source, labelIndex }));
    expect([...balanceWeights(anon, { sourceWeights: { '1': 0 } })]).toEqual([...w]);
  });

  it('rejects unknown sources and unusable weights', () => {
    expect(() => balanceWeights(xs, { sourceWeights: { C: 1 } })).toThrow(/unknown source C.*A, B/);
    expect(() => balanceWeights(xs, { sourceWeights: { A: -1 } })).toThrow(DatasetError);
    expect(() => balanceWeights(xs, { sourceWeights: { A: 0, B: 0 } })).toThrow(DatasetError);
    expect(balanceWeights([])).toHaveLength(0);
  });
});
