/**
 * The nearest-cells check on synthetic features where a class centre cannot see the unknown: class 0's cells
 * lie in two clouds, and the unknown cells sit between them, on the class's centre. The Mahalanobis distance
 * calls them typical of class 0; their nearest training cells are far. Fitted per lab, computed in the model
 * file as the reference implementation computes it, read back, and moved with the features.
 */
import { describe, expect, it } from 'vitest';
import { cellDistance, nearestComponent, referenceDistance } from '../model/familiarity.js';
import {
  appendFamiliarity,
  halveNeighbours,
  readFamiliarity,
  shiftFamiliarityMeans,
} from '../model/familiarity-graph.js';
import { neighbourDistance } from '../model/neighbours.js';
import { featureModel, runFamiliarity, syntheticRows, trainAndVal } from '../testing/feature-model.js';
import { fitFamiliarity } from './familiarity.js';

const DIMS = [4, 4, 8, 8];
const D = 24;
const K = 3;

/** Class c: bumps on columns 8 + c and 11 + c; class 0 also ±4 on columns 16–23 (two clouds). Lab 1 lifts columns 2–3. */
function rows(n: number, seed: number, o: { between?: boolean } = {}) {
  return syntheticRows(n, seed, D, 0.2, (r, x, at) => {
    const c = o.between ? 0 : r % K;
    const source = o.between ? 0 : Math.floor(r / K) % 2;
    x[at + 8 + c] += 3;
    x[at + 11 + c] += 3;
    const cloud = Math.floor(r / (2 * K)) % 2 === 0 ? 4 : -4;
    if (c === 0 && !o.between) for (let j = 16; j < 24; j++) x[at + j] += cloud;
    if (source === 1) for (const j of [2, 3]) x[at + j] += 3;
    return { label: c, source };
  });
}

describe('nearest stored cells', () => {
  const train = rows(1200, 1);
  const val = rows(600, 2);
  const all = trainAndVal(train, val, D);
  const fitted = fitFamiliarity(all, ['a', 'b', 'c'], ['lab0', 'lab1'], DIMS, { seed: 3 });
  const refs = fitted.references;
  const nb = refs.neighbours!;
  const between = rows(200, 4, { between: true });
  const share = (x: Float32Array, n: number, flag: (r: number) => boolean) => {
    let k = 0;
    for (let r = 0; r < n; r++) if (flag(r)) k++;
    return k / n;
  };

  it('flags about 5 % of each known lab, and the cells between two clouds that a class centre misses', () => {
    expect(nb.thresholds.length).toBe(2);
    expect(nb.k).toBe(5);
    expect(Object.keys(fitted.record.neighbours!.thresholds)).toEqual(['lab0', 'lab1']);
    const over = (x: Float32Array, r: number) =>
      neighbourDistance(nb, x, D, r) > nb.thresholds[nearestComponent(refs.image, x, D, r)];
    for (const lab of [0, 1]) {
      const mine = val.source.reduce((s, v) => s + (v === lab ? 1 : 0), 0);
      const s = share(val.x, val.n, (r) => val.source[r] === lab && over(val.x, r)) * (val.n / mine);
      expect(s).toBeGreaterThan(0.01);
      expect(s).toBeLessThan(0.1);
    }
    expect(share(between.x, between.n, (r) => over(between.x, r))).toBeGreaterThan(0.9);
    // The Mahalanobis distance alone calls most of them familiar: they sit on class 0's centre.
    const cellThreshold = fitted.record.cell.threshold;
    const mahalanobis = share(
      between.x,
      between.n,
      (r) => referenceDistance(refs.cell, between.x, D, r) > cellThreshold,
    );
    expect(mahalanobis).toBeLessThan(0.5);
    // Part of the cell check: the one cell distance crosses the card's one threshold.
    expect(
      share(between.x, between.n, (r) => cellDistance(refs, between.x, D, r) > cellThreshold),
    ).toBeGreaterThan(0.9);
    expect(fitted.record.validation!.byReason.neighbours).toBeGreaterThan(0.01);
  });

  it('is computed in the model file as the reference implementation computes it, read back and shifted', async () => {
    const model = appendFamiliarity(featureModel(DIMS), refs);
    const probe = new Float32Array([...val.x.subarray(0, 20 * D), ...between.x.subarray(0, 20 * D)]);
    const out = await runFamiliarity(model, probe, D);
    for (let r = 0; r < 40; r++) {
      const cell = cellDistance(refs, probe, D, r);
      expect(Math.abs(out.cell[r] - cell)).toBeLessThan(1e-3 * Math.max(1, cell));
    }
    const back = readFamiliarity(model, { cell: ['a', 'b', 'c'], image: ['lab0', 'lab1'] })!;
    expect(back.neighbours!.k).toBe(nb.k);
    expect(back.neighbours!.rows).toEqual(nb.rows);
    expect(back.neighbours!.weight).toEqual(nb.weight);
    expect(Array.from(back.neighbours!.thresholds)).toEqual(Array.from(nb.thresholds));
    expect(back.neighbours!.cellScale).toBeCloseTo(nb.cellScale, 5);

    // At half precision (the int8 copy's storage): a smaller file, the same distances within rounding.
    const halved = halveNeighbours(model);
    expect(halved.length).toBeLessThan(model.length - nb.rows.length * 2 + 200);
    expect(halveNeighbours(halved)).toBe(halved);
    const half = await runFamiliarity(halved, probe, D);
    for (let r = 0; r < 40; r++)
      expect(Math.abs(half.cell[r] - out.cell[r])).toBeLessThan(1e-2 * Math.max(1, out.cell[r]));
    const halfBack = readFamiliarity(halved, { cell: ['a', 'b', 'c'], image: ['lab0', 'lab1'] })!;
    for (let i = 0; i < nb.rows.length; i++)
      expect(Math.abs(halfBack.neighbours!.rows[i] - nb.rows[i])).toBeLessThan(1e-3);

    const shift = Float32Array.from({ length: D }, (_, j) => 0.1 * ((j % 5) - 2));
    const again = await runFamiliarity(
      shiftFamiliarityMeans(model, shift),
      probe.map((v, i) => v + shift[i % D]),
      D,
    );
    for (let r = 0; r < 40; r++)
      expect(Math.abs(again.cell[r] - out.cell[r])).toBeLessThan(2e-3 * Math.max(1, out.cell[r]));
  });

  it('is left out when asked', () => {
    const plain = fitFamiliarity(all, ['a', 'b', 'c'], ['lab0', 'lab1'], DIMS, {
      seed: 3,
      neighbours: false,
    });
    expect(plain.references.neighbours).toBeUndefined();
    expect(plain.record.neighbours).toBeUndefined();
  });
});
