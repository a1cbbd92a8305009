import { describe, expect, it } from 'vitest';
import { createRng } from '../imaging/random.js';
import { headLogits } from './head.js';
import {
  chooseL2ByCv,
  groupedFolds,
  trainReviewedHeads,
  type CellInfo,
  type CellRows,
} from './reviewed-recipe.js';

const gauss = (rng: () => number) => Math.sqrt(-2 * Math.log(rng() + 1e-12)) * Math.cos(2 * Math.PI * rng());

/**
 * `perClass` cells of each of 2 classes, one image each, `views` rows per cell (views jitter a little).
 * `signal`: how far class 1 sits from class 0 along the first feature; `noisy`: labels drawn at random.
 */
function cellsOf(
  perClass: number,
  d: number,
  views: number,
  o: { signal: number; noisy?: boolean; seed: number },
) {
  const rng = createRng(o.seed);
  const cells: CellInfo[] = [];
  const x: number[] = [];
  const cell: number[] = [];
  const view: number[] = [];
  for (let i = 0; i < 2 * perClass; i++) {
    const truth = i % 2;
    cells.push({ labelIndex: o.noisy ? (rng() < 0.5 ? 0 : 1) : truth, group: `img${i}` });
    const base = Array.from({ length: d }, (_, j) => gauss(rng) + (j === 0 ? truth * o.signal : 0));
    for (let v = 0; v < views; v++) {
      x.push(...base.map((b) => b + 0.05 * gauss(rng)));
      cell.push(i);
      view.push(v);
    }
  }
  const rows: CellRows = {
    x: Float32Array.from(x),
    d,
    cell: Int32Array.from(cell),
    view: Int32Array.from(view),
  };
  return { rows, cells };
}

describe('groupedFolds', () => {
  it('never puts one image in two folds and deals every class across the folds', () => {
    const cells: CellInfo[] = [];
    for (let i = 0; i < 30; i++) cells.push({ labelIndex: i % 3, group: `img${Math.floor(i / 2)}` });
    // Two cells per image; an image's cells share its first cell's class for the dealing.
    const members = cells.map((_, i) => i);
    const fold = groupedFolds(cells, members, 3, 1);
    for (let i = 0; i < 30; i += 2) expect(fold.get(i)).toBe(fold.get(i + 1));
    // 5 images of each class over 3 folds: every fold holds some of every class.
    for (let f = 0; f < 3; f++)
      for (let c = 0; c < 3; c++)
        expect(members.some((i) => i % 2 === 0 && fold.get(i) === f && cells[i].labelIndex === c)).toBe(true);
    expect(groupedFolds(cells, members, 3, 1)).toEqual(fold);
  });
});

describe('chooseL2ByCv', () => {
  it('chooses weak regularisation when the classes are cleanly apart, strong when labels are noise', () => {
    const clean = cellsOf(14, 30, 3, { signal: 6, seed: 1 });
    const noise = cellsOf(14, 30, 3, { signal: 0, noisy: true, seed: 2 });
    const all = (c: CellInfo[]) => c.map((_, i) => i);
    const a = chooseL2ByCv(clean.rows, clean.cells, all(clean.cells), 2, { seed: 1 });
    const b = chooseL2ByCv(noise.rows, noise.cells, all(noise.cells), 2, { seed: 1 });
    expect(a.folds).toBe(5);
    expect(a.table.map((t) => t.l2)).toEqual([1, 0.1, 0.01, 0.001]);
    expect(b.l2).toBe(1);
    expect(a.l2).toBeLessThan(b.l2);
    expect(a.table.find((t) => t.l2 === a.l2)!.accuracy).toBeGreaterThan(0.8);
  });
});

describe('trainReviewedHeads', () => {
  it('scores a head trained without the held-back cells and ships one trained on all of them', () => {
    const { rows, cells } = cellsOf(12, 6, 3, { signal: 4, seed: 3 });
    // Held back: the last two images of each class. One of them alone carries a feature (the last one).
    const held = new Set([20, 21, 22, 23]);
    const d = rows.d;
    for (let r = 0; r < rows.cell.length; r++) {
      rows.x[r * d + d - 1] = rows.cell[r] === 23 ? 8 : 0;
    }
    const train = cells.map((_, i) => i).filter((i) => !held.has(i));
    const { scored, final, cv } = trainReviewedHeads(rows, cells, train, 2, 1);
    expect([1, 0.1, 0.01, 0.001]).toContain(cv.l2);
    // The feature only a held-back cell has: the scored head never saw it vary, the final head learned it.
    // Two rows alike but for that feature: how much it moves the head towards the held-back cell's class.
    const probe = new Float32Array(2 * d);
    probe[d + d - 1] = 8;
    const margin = (h: typeof scored.head) => {
      const z = headLogits(h, probe, 2);
      return z[3] - z[2] - (z[1] - z[0]);
    };
    expect(Math.abs(margin(scored.head))).toBeLessThan(1e-6);
    expect(margin(final.head)).toBeGreaterThan(0.5);
  });
});
