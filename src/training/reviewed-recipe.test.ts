import { describe, expect, it } from 'vitest';
import { createRng } from '../imaging/random.js';
import { fitSoftmaxHead, headLogits } from './head.js';
import {
  calibrateReviewedHead,
  cellData,
  chooseL2ByCv,
  groupedFolds,
  trainReviewedHeads,
  type CellInfo,
  type CellRows,
  type OutOfFold,
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

describe('out-of-fold logits', () => {
  it("are each cell's first view scored by the head of the other folds, at the chosen l2", () => {
    const { rows, cells } = cellsOf(10, 8, 3, { signal: 3, seed: 4 });
    const members = cells.map((_, i) => i).filter((i) => i !== 5);
    const cv = chooseL2ByCv(rows, cells, members, 2, { seed: 7 });
    const oof = cv.outOfFold;
    expect([...oof.cells].sort((a, b) => a - b)).toEqual(members);
    expect(Array.from(oof.y)).toEqual(oof.cells.map((i) => cells[i].labelIndex));
    // Re-derive one cell's row: the head of the folds it was not in, trained down the grid as chooseL2ByCv does.
    const fold = groupedFolds(cells, members, cv.folds, 7);
    const j = 3;
    const i = oof.cells[j];
    const train = cellData(
      rows,
      cells,
      members.filter((m) => fold.get(m) !== fold.get(i)),
      2,
    );
    let head: ReturnType<typeof fitSoftmaxHead>['head'] | undefined;
    for (const l2 of [1, 0.1, 0.01, 0.001]) {
      head = fitSoftmaxHead(train.x, train.n, rows.d, train.y, 2, {
        l2,
        sampleWeights: train.sampleWeights,
        tol: 1e-3,
        init: head ? { weight: head.weight, bias: head.bias } : undefined,
      }).head;
      if (l2 === cv.l2) break;
    }
    const first = rows.x.subarray(i * 3 * rows.d, (i * 3 + 1) * rows.d);
    const z = headLogits(head!, Float32Array.from(first), 1);
    expect(oof.logits[j * 2]).toBeCloseTo(z[0], 4);
    expect(oof.logits[j * 2 + 1]).toBeCloseTo(z[1], 4);
  });
});

describe('calibrateReviewedHead', () => {
  /** n cells of 2 classes whose true margin m is drawn so that P(correct) = sigmoid(m); logits are m × scale. */
  function outOfFold(n: number, scale: number, seed: number): OutOfFold {
    const rng = createRng(seed);
    const logits = new Float32Array(2 * n);
    const y = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const m = 0.5 + 3 * rng();
      const correct = rng() < 1 / (1 + Math.exp(-m));
      y[i] = i % 2;
      const predicted = correct ? y[i] : 1 - y[i];
      logits[2 * i + predicted] = (m * scale) / 2;
      logits[2 * i + (1 - predicted)] = (-m * scale) / 2;
    }
    return { cells: Array.from({ length: n }, (_, i) => i), fold: new Int32Array(n), logits, y };
  }

  it('fits the temperature the head needs: overconfident logits are cooled', () => {
    const cal = calibrateReviewedHead(outOfFold(2000, 4, 1), 2);
    expect(cal.temperature).toBeGreaterThan(3);
    expect(cal.temperature).toBeLessThan(5);
    expect(cal.cells).toBe(2000);
  });

  it('raises the line to the accuracy target but never past the review budget, other flags counted first', () => {
    const oof = outOfFold(1000, 1, 2);
    const free = calibrateReviewedHead(oof, 2, undefined, { target: 0.8 });
    // A modest target: the accuracy line alone flags less than the budget, and is kept.
    expect(free.reviewThreshold).toBe(free.accuracyThreshold);
    expect(free.reviewRate).toBeLessThanOrEqual(0.1);
    // A target this data cannot reach within 10 %: the line is lowered to the budget.
    const strict = calibrateReviewedHead(oof, 2, undefined, { target: 0.99 });
    expect(strict.accuracyThreshold).toBeGreaterThan(strict.reviewThreshold);
    expect(strict.reviewRate).toBeGreaterThan(0.08);
    expect(strict.reviewRate).toBeLessThanOrEqual(0.1);
    // Cells flagged as unfamiliar spend the budget first: the confidence line drops further.
    const flagged = Uint8Array.from({ length: 1000 }, (_, i) => (i % 20 === 0 ? 1 : 0));
    const shared = calibrateReviewedHead(oof, 2, flagged, { target: 0.99 });
    expect(shared.reviewThreshold).toBeLessThan(strict.reviewThreshold);
    expect(shared.reviewRate).toBeLessThanOrEqual(0.1);
    // Never below the floor (the base model's line), even when that spends more than the budget.
    const floored = calibrateReviewedHead(oof, 2, flagged, { target: 0.99, floor: 0.9 });
    expect(floored.reviewThreshold).toBe(0.9);
    expect(floored.reviewRate).toBeGreaterThan(0.1);
  });
});
