/**
 * How the head of a model learned from reviewed cells is trained (training/reviewed.ts): l2 chosen from a
 * small grid by cross-validation grouped by image (a few dozen reviewed images are too few to spare a
 * validation split, and one small split chooses by chance), every view of a cell weighing a share of its
 * cell, classes weighing the same however many cells of each were reviewed.
 */
import { createHash } from 'node:crypto';
import { DatasetError } from '../errors.js';
import { argmax } from '../model/softmax.js';
import { fitTemperature, softmax } from './calibration.js';
import { fitSoftmaxHead, headLogits, scoreHead, type LinearHead } from './head.js';
import { chooseReviewThreshold } from './held-out.js';
import { capReviewThreshold, REVIEW_BUDGET } from './review-budget.js';

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

/** Out-of-fold logits: each member cell's first view scored by the head of the folds it was not in. */
export interface OutOfFold {
  /** Indices into the cells, in the order of the rows below. */
  cells: number[];
  /** Each cell's fold (its head was trained on the other folds' cells). */
  fold: Int32Array;
  /** cells.length × k logits (raw features through the head: standardisation included). */
  logits: Float32Array;
  y: Int32Array;
}

/**
 * The l2 of the grid with the lowest cross-validated NLL on the given cells (ties: the larger l2). Heads
 * are trained on every view of the other folds' cells and scored on the first view of the fold's own; the
 * chosen l2's out-of-fold logits are returned too: the calibration of a head learned from reviewed cells is
 * fitted on them, so no held-back cell is spent on it.
 */
export function chooseL2ByCv(
  rows: CellRows,
  cells: CellInfo[],
  members: number[],
  k: number,
  o: { grid?: number[]; folds?: number; seed: number },
): { l2: number; table: L2CvScore[]; folds: number; outOfFold: OutOfFold } {
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
  const oofCells: number[] = [];
  const oofFold: number[] = [];
  const oofLogits = grid.map(() => [] as Float32Array[]);
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
    oofCells.push(...test.rows.map((r) => rows.cell[r]));
    oofFold.push(...test.rows.map(() => f));
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
      oofLogits[g].push(headLogits(prev, test.x, test.n));
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
  let best = 0;
  table.forEach((t, g) => {
    if (t.nll < table[best].nll) best = g;
  });
  const logits = new Float32Array(oofCells.length * k);
  let at = 0;
  for (const part of oofLogits[best]) {
    logits.set(part, at);
    at += part.length;
  }
  const outOfFold = {
    cells: oofCells,
    fold: Int32Array.from(oofFold),
    logits,
    y: Int32Array.from(oofCells, (i) => cells[i].labelIndex),
  };
  return { l2: table[best].l2, table, folds, outOfFold };
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

/**
 * The accuracy a candidate from reviewed cells aims for among the results it does not flag: high enough that,
 * in practice, the review budget draws the line. The lab's reviewers asked for the model to learn their lab;
 * its errors there should reach them while they have budget for it. With `train`'s 95 % a candidate that
 * reached 96 % on a new lab kept its 4 % of errors silent with only 5 % of the budget spent (BENCHMARKS.md,
 * "Adapting to a lab from a few of its cells").
 */
export const REVIEWED_REVIEW_ACCURACY = 0.99;

/** How a head learned from reviewed cells is calibrated, and on how many cells. */
export interface ReviewedCalibration {
  temperature: number;
  /** Flag results below this confidence: the accuracy target's line, lowered to the review budget. */
  reviewThreshold: number;
  /** The line the accuracy target alone would draw. */
  accuracyThreshold: number;
  /** Share of the out-of-fold cells flagged at `reviewThreshold` (confidence or familiarity). */
  reviewRate: number;
  cells: number;
}

/**
 * The temperature and review threshold of a head learned from reviewed cells, from its out-of-fold logits
 * (the training part's cells, each scored by a head that never saw it): as `train` calibrates on its
 * validation split (at a higher accuracy target, REVIEWED_REVIEW_ACCURACY), then lowers the line to the review
 * budget as `familiarize` does. The base model's
 * temperature and threshold were fitted for another head on other labs' cells: kept, they left about 4 % of
 * a new lab's cells wrong and unflagged while its reviewers had budget to spare (BENCHMARKS.md, "Adapting to a
 * lab from a few of its cells"). `flagged` marks the out-of-fold cells the familiarity checks flag anyway (in `outOfFold.cells` order).
 */
export function calibrateReviewedHead(
  outOfFold: OutOfFold,
  k: number,
  flagged?: Uint8Array,
  o: {
    target?: number;
    /**
     * The lowest line allowed: the base model's. With a few dozen reviewed cells the out-of-fold familiarity
     * flags alone may fill the budget (they are widened by a fifth fewer cells than the candidate's), which
     * would leave the candidate no low-confidence flag at all (eval:adapt-api: silent errors then rose).
     */
    floor?: number;
  } = {},
): ReviewedCalibration {
  const { logits, y } = outOfFold;
  const temperature = fitTemperature(logits, y, k);
  const p = softmax(logits, k, temperature);
  const accuracyThreshold = chooseReviewThreshold(p, y, k, o.target ?? REVIEWED_REVIEW_ACCURACY);
  const rows = Array.from(y, (_, i) => ({
    confidence: p[i * k + argmax(p, i, k)],
    flagged: flagged?.[i] === 1,
    source: 0,
  }));
  const capped = capReviewThreshold(rows, ['reviewed'], accuracyThreshold, REVIEW_BUDGET);
  const reviewThreshold = Math.max(o.floor ?? 0, capped.threshold);
  const reviewRate = rows.filter((r) => r.flagged || r.confidence < reviewThreshold).length / rows.length;
  return { temperature, reviewThreshold, accuracyThreshold, reviewRate, cells: y.length };
}
