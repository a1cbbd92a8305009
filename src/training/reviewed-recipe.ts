/**
 * How the head of a model learned from reviewed cells is trained (training/reviewed.ts): l2 chosen from a
 * small grid by cross-validation grouped by image (a few dozen reviewed images are too few to spare a
 * validation split, and one small split chooses by chance), every view of a cell weighing a share of its
 * cell, classes weighing the same however many cells of each were reviewed.
 */
import { createHash } from 'node:crypto';
import { DatasetError } from '../errors.js';
import { fitSoftmaxHead, scoreHead, type LinearHead } from './head.js';

/** The grid `train` chooses from (train.ts DEFAULT_L2_GRID): strong to weak regularisation. */
export const REVIEWED_L2_GRID = [1, 0.1, 0.01, 0.001];
/** Folds of the cross-validation (fewer when a class has fewer images). */
export const REVIEWED_CV_FOLDS = 5;
/** L-BFGS tolerance, as `train` uses (train.ts DEFAULT_HEAD_TOL). */
const TOL = 1e-3;

/** Feature rows of cells, several views each: row r is view `view[r]` of cell `cell[r]`. */
export interface CellRows {
  x: Float32Array;
  d: number;
  cell: Int32Array;
  view: Int32Array;
}

/** What the head learns from: each cell's class and image (its group: never split across folds). */
export interface CellInfo {
  labelIndex: number;
  group: string;
}

export interface L2CvScore {
  l2: number;
  /** Mean NLL and accuracy of the held-out folds' cells (their first view, unaugmented), class-balanced. */
  nll: number;
  accuracy: number;
}

/**
 * Folds of the given cells with no image in two folds: each class's images are ordered by a hash of the
 * image with the seed and dealt round-robin, so every fold holds about the same share of every class. An image
 * goes with the class of its first listed cell. Returns each cell's fold in [0, folds).
 */
export function groupedFolds(
  cells: CellInfo[],
  members: number[],
  folds: number,
  seed: number,
): Map<number, number> {
  const classOf = new Map<string, number>();
  for (const i of members) if (!classOf.has(cells[i].group)) classOf.set(cells[i].group, cells[i].labelIndex);
  const byClass = new Map<number, string[]>();
  for (const [g, c] of classOf) byClass.set(c, [...(byClass.get(c) ?? []), g]);
  const foldOf = new Map<string, number>();
  for (const groups of byClass.values()) {
    const ordered = groups
      .map((g) => ({ g, h: createHash('sha256').update(`${seed}\0${g}`).digest('hex') }))
      .sort((a, b) => (a.h < b.h ? -1 : a.h > b.h ? 1 : 0));
    ordered.forEach(({ g }, j) => foldOf.set(g, j % folds));
  }
  return new Map(members.map((i) => [i, foldOf.get(cells[i].group)!]));
}

/** The rows of the given cells (all views, or the first only) with labels and class-balanced weights. */
export function cellData(
  rows: CellRows,
  cells: CellInfo[],
  members: number[],
  k: number,
  firstViewOnly = false,
) {
  const keep = new Set(members);
  const idx: number[] = [];
  for (let r = 0; r < rows.cell.length; r++)
    if (keep.has(rows.cell[r]) && (!firstViewOnly || rows.view[r] === 0)) idx.push(r);
  const { d } = rows;
  const x = new Float32Array(idx.length * d);
  idx.forEach((r, j) => x.set(rows.x.subarray(r * d, (r + 1) * d), j * d));
  const y = Int32Array.from(idx, (r) => cells[rows.cell[r]].labelIndex);
  // Each class weighs the same in total, and a cell's views share its weight.
  const perClass = new Array<number>(k).fill(0);
  for (const v of y) perClass[v]++;
  const present = perClass.filter((c) => c > 0).length;
  const sampleWeights = Float32Array.from(y, (v) => idx.length / (present * perClass[v]));
  return { x, n: idx.length, y, sampleWeights, rows: idx };
}

/**
 * The l2 of the grid with the lowest cross-validated NLL on the given cells (ties: the larger l2). Heads
 * are trained on every view of the other folds' cells and scored on the first view of the fold's own.
 */
export function chooseL2ByCv(
  rows: CellRows,
  cells: CellInfo[],
  members: number[],
  k: number,
  o: { grid?: number[]; folds?: number; seed: number },
): { l2: number; table: L2CvScore[]; folds: number } {
  const grid = [...(o.grid ?? REVIEWED_L2_GRID)].sort((a, b) => b - a);
  const perClassImages = new Map<number, Set<string>>();
  for (const i of members) {
    const s = perClassImages.get(cells[i].labelIndex) ?? new Set<string>();
    s.add(cells[i].group);
    perClassImages.set(cells[i].labelIndex, s);
  }
  const fewest = Math.min(...[...perClassImages.values()].map((s) => s.size));
  const folds = Math.min(o.folds ?? REVIEWED_CV_FOLDS, fewest);
  if (folds < 2) throw new DatasetError('Choosing l2 needs at least two reviewed images of every class.');
  const foldOf = groupedFolds(cells, members, folds, o.seed);
  const sums = grid.map(() => ({ nll: 0, accuracy: 0, weight: 0 }));
  for (let f = 0; f < folds; f++) {
    const train = cellData(
      rows,
      cells,
      members.filter((i) => foldOf.get(i) !== f),
      k,
    );
    const test = cellData(
      rows,
      cells,
      members.filter((i) => foldOf.get(i) === f),
      k,
      true,
    );
    if (test.n === 0) continue;
    let prev: LinearHead | undefined;
    grid.forEach((l2, g) => {
      // Warm-started from the stronger l2's head, as selectL2 does: much faster than starting cold.
      prev = fitSoftmaxHead(train.x, train.n, rows.d, train.y, k, {
        l2,
        sampleWeights: train.sampleWeights,
        tol: TOL,
        init: prev ? { weight: prev.weight, bias: prev.bias } : undefined,
      }).head;
      const s = scoreHead(prev, test);
      sums[g].nll += s.nll * test.n;
      sums[g].accuracy += s.accuracy * test.n;
      sums[g].weight += test.n;
    });
  }
  const table = grid.map((l2, g) => ({
    l2,
    nll: sums[g].nll / sums[g].weight,
    accuracy: sums[g].accuracy / sums[g].weight,
  }));
  let best = table[0];
  for (const t of table) if (t.nll < best.nll) best = t;
  return { l2: best.l2, table, folds };
}

/** A head on every view of the given cells with the given l2. */
export function fitCellsHead(
  rows: CellRows,
  cells: CellInfo[],
  members: number[],
  k: number,
  l2: number,
  init?: LinearHead,
): { head: LinearHead; iterations: number } {
  const data = cellData(rows, cells, members, k);
  const fit = fitSoftmaxHead(data.x, data.n, rows.d, data.y, k, {
    l2,
    sampleWeights: data.sampleWeights,
    tol: TOL,
    init: init ? { weight: init.weight, bias: init.bias } : undefined,
  });
  return { head: fit.head, iterations: fit.iterations };
}

/**
 * The heads of a model learned from reviewed cells: l2 chosen by cross-validation on the training part
 * (`train`, indices into `cells`), `scored` trained on that part with it (what the held-back cells score: they
 * take no part in it), and `final` trained the same way on every cell (what the candidate ships, as `train`
 * refits on all after choosing).
 */
export function trainReviewedHeads(
  rows: CellRows,
  cells: CellInfo[],
  train: number[],
  k: number,
  seed: number,
) {
  const cv = chooseL2ByCv(rows, cells, train, k, { seed });
  const scored = fitCellsHead(rows, cells, train, k, cv.l2);
  const all = cells.map((_, i) => i);
  const final = fitCellsHead(rows, cells, all, k, cv.l2, scored.head);
  return { cv, scored, final };
}
