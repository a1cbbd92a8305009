/**
 * The block heads' disagreement on synthetic features whose blocks agree for the known classes and
 * contradict each other for an unknown one: fitted per lab, written into a model file, computed there as
 * the reference implementation computes it, read back, and moved with the features by shiftFamiliarityMeans.
 */
import { describe, expect, it } from 'vitest';
import { disagreementOf } from '../model/disagreement.js';
import { cellDistance, nearestComponent, referenceDistance } from '../model/familiarity.js';
import { appendFamiliarity, readFamiliarity, shiftFamiliarityMeans } from '../model/familiarity-graph.js';
import { featureModel, runFamiliarity, syntheticRows, trainAndVal } from '../testing/feature-model.js';
import { disagreementBlocks } from './disagreement.js';
import { fitFamiliarity } from './familiarity.js';

const DIMS = [4, 4, 8, 8];
const D = 24;
const K = 3;
const BLOCKS = disagreementBlocks(DIMS)!;

/**
 * n rows: every block says class `c` (a bump on its c-th column), plus noise; lab 1 lifts the early block's
 * last two columns (stain). An `unknown` row's three blocks each say a different class.
 */
function rows(n: number, seed: number, o: { unknown?: boolean } = {}) {
  return syntheticRows(n, seed, D, 0.6, (r, x, at) => {
    const c = r % K;
    const source = Math.floor(r / K) % 2;
    BLOCKS.forEach(([start], b) => (x[at + start + (o.unknown ? (c + b) % K : c)] += 2.5));
    if (source === 1) for (const j of [6, 7]) x[at + j] += 3;
    return { label: c, source };
  });
}

describe('block-head disagreement', () => {
  const train = rows(1200, 1);
  const val = rows(600, 2);
  const all = trainAndVal(train, val, D);
  const fitted = fitFamiliarity(all, ['a', 'b', 'c'], ['lab0', 'lab1'], DIMS, { seed: 3 });
  const refs = fitted.references;
  const h = refs.disagreement!;
  const unknown = rows(300, 4, { unknown: true });

  it('flags about 5 % of each known lab and nearly every cell whose blocks disagree', () => {
    expect(h.blocks).toEqual([
      [0, 8],
      [8, 16],
      [16, 24],
    ]);
    expect(h.thresholds.length).toBe(2);
    const rec = fitted.record.disagreement!;
    expect(Object.keys(rec.thresholds)).toEqual(['lab0', 'lab1']);
    const share = (x: Float32Array, n: number, pick: (r: number) => boolean) => {
      let flagged = 0;
      let total = 0;
      for (let r = 0; r < n; r++) {
        if (!pick(r)) continue;
        total++;
        const lab = nearestComponent(refs.image, x, D, r);
        if (disagreementOf(h, x, D, r) > h.thresholds[lab]) flagged++;
      }
      return flagged / total;
    };
    for (const lab of [0, 1]) {
      const s = share(val.x, val.n, (r) => val.source[r] === lab);
      expect(s).toBeGreaterThan(0.01);
      expect(s).toBeLessThan(0.1);
    }
    expect(share(unknown.x, unknown.n, () => true)).toBeGreaterThan(0.9);
    // Part of the cell check: the record counts it under unfamiliar_cell, and the cell distance crosses the
    // card's one cell threshold where the heads disagree.
    expect(fitted.record.validation!.byReason.disagreement).toBeGreaterThan(0.01);
    const threshold = fitted.record.cell.threshold;
    let crossed = 0;
    for (let r = 0; r < unknown.n; r++) if (cellDistance(refs, unknown.x, D, r) > threshold) crossed++;
    expect(crossed / unknown.n).toBeGreaterThan(0.9);
  });

  it('is computed in the model file as the reference implementation computes it, and read back', async () => {
    const model = appendFamiliarity(featureModel(DIMS), refs);
    const probe = new Float32Array([...val.x.subarray(0, 20 * D), ...unknown.x.subarray(0, 20 * D)]);
    const out = await runFamiliarity(model, probe, D);
    for (let r = 0; r < 40; r++) {
      const cell = cellDistance(refs, probe, D, r);
      const image = referenceDistance(refs.image, probe, D, r);
      expect(Math.abs(out.cell[r] - cell)).toBeLessThan(1e-3 * Math.max(1, cell));
      expect(Math.abs(out.image[r] - image)).toBeLessThan(1e-3 * Math.max(1, image));
    }

    const back = readFamiliarity(model, { cell: ['a', 'b', 'c'], image: ['lab0', 'lab1'] })!;
    expect(back.disagreement!.blocks).toEqual(h.blocks);
    expect(Array.from(back.disagreement!.thresholds)).toEqual(Array.from(h.thresholds));
    expect(back.disagreement!.cellScale).toBeCloseTo(h.cellScale, 5);
    for (let i = 0; i < 3; i++) expect(back.disagreement!.weights[i]).toEqual(h.weights[i]);
    expect(Array.from(back.cell.centers)).toEqual(Array.from(refs.cell.centers));

    // A copy whose features sit `shift` away gives the same distances once its references are moved.
    const shift = Float32Array.from({ length: D }, (_, j) => 0.1 * ((j % 5) - 2));
    const shifted = shiftFamiliarityMeans(model, shift);
    const moved = probe.map((v, i) => v + shift[i % D]);
    const again = await runFamiliarity(shifted, moved, D);
    for (let r = 0; r < 40; r++) {
      const a = out.cell[r];
      expect(Math.abs(again.cell[r] - a)).toBeLessThan(2e-3 * Math.max(1, a));
    }
  });

  it('is left out when the backbone has fewer than four blocks', () => {
    expect(disagreementBlocks([144, 192, 576])).toBeNull();
    const plain = fitFamiliarity(all, ['a', 'b', 'c'], ['lab0', 'lab1'], [8, 16], { seed: 3 });
    expect(plain.references.disagreement).toBeUndefined();
    expect(plain.record.disagreement).toBeUndefined();
  });
});
