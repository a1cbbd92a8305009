/**
 * The familiarity checks of a model whose head was retrained on reviewed cells (training/reviewed.ts). The
 * backbone is frozen, so the parent's references measure the candidate's features as they measured the
 * parent's; but they were fitted on the parent's labs, and a lab whose cells were reviewed is usually another
 * lab (that is why it was adapted to), which the parent's checks flag throughout. So the reviewed cells join
 * the references (training/familiarity-extend.ts): the image reference gets the reviewed lab as a new
 * component, the cell reference one component per class of the reviewed lab (measuring only crops whose
 * nearest lab is the reviewed one), both with the shared covariance widened where the lab varies more than
 * the parent's labs; the parent's components and thresholds stay as they were.
 *
 * A few dozen cells in 2192 dimensions fit their own rows closely but new cells of the lab poorly, so a new
 * component's distances are scaled (never up) so that the card's threshold flags about the check's quantile
 * of the lab's cells not fitted: the scale is chosen on out-of-fold cells (cross-validation grouped by image).
 * The block heads' disagreement gets a threshold for the reviewed lab: the same quantile of the reviewed
 * cells' disagreement (the heads were not fitted on them).
 */
import { readFamiliarity } from '../model/familiarity-graph.js';
import { disagreementOf } from '../model/disagreement.js';
import { neighbourDistance, projectUnit, type NeighbourReference } from '../model/neighbours.js';
import {
  cellDistance,
  componentDistances,
  nearestComponent,
  referenceDistance,
  type FamiliarityReferences,
  type GaussianReference,
} from '../model/familiarity.js';
import type { FamiliarityRecord, ModelCard } from '../model/types.js';
import { extendReference, scaleNewComponents } from './familiarity-extend.js';
import { quantile } from './quantile.js';
import { cellData, groupedFolds, type CellInfo, type CellRows } from './reviewed-recipe.js';

/** Folds of the scales' cross-validation (fewer when a class has fewer reviewed images). */
const SCALE_FOLDS = 3;

export interface ReviewedFamiliarity {
  /** The widened references (model/familiarity-graph.ts appendFamiliarity puts them in a model file). */
  references: FamiliarityReferences;
  /** The card's record. */
  record: FamiliarityRecord;
  /** 1 for each row of n×d raw features that the checks flag (unfamiliar cell or image). */
  flags: (x: Float32Array, n: number, d: number) => Uint8Array;
}

/** How the parent's checks were widened to the reviewed lab: what a later fit on more cells reuses. */
export interface ReviewedLabScales {
  cell: number;
  image: number;
}

/** The parent's references and card record, or null when the parent has no familiarity checks. */
export function parentFamiliarity(
  parentBytes: Uint8Array,
  parent: ModelCard,
): { refs: FamiliarityReferences; fam: FamiliarityRecord } | null {
  const fam = parent.familiarity;
  if (!fam) return null;
  const refs = readFamiliarity(parentBytes, { cell: fam.cell.components, image: fam.image.components });
  return refs ? { refs, fam } : null;
}

/** A component name for the reviewed lab not already taken by one of the parent's labs. */
function labName(taken: string[]): string {
  for (let i = 1; ; i++) {
    const name = i === 1 ? 'reviewed lab' : `reviewed lab ${i}`;
    if (!taken.includes(name)) return name;
  }
}

/**
 * The references widened by the given cells (their first view: the references measure cells as they are, and
 * the cost grows with the rows squared), the new components' scales at 1.
 */
function widen(
  refs: FamiliarityReferences,
  rows: CellRows,
  cells: CellInfo[],
  members: number[],
  classes: string[],
  lab: string,
): FamiliarityReferences {
  const k = classes.length;
  const data = cellData(rows, cells, members, k, true);
  const present = classes.flatMap((_, c) => (data.y.includes(c) ? [c] : []));
  const image = extendReference(refs.image, data.x, data.n, rows.d, new Int32Array(data.n), [lab]);
  const wide = extendReference(
    refs.cell,
    data.x,
    data.n,
    rows.d,
    Int32Array.from(data.y, (y) => present.indexOf(y)),
    present.map((c) => `${classes[c]} (${lab})`),
  );
  // The lab's class centres measure only the rows whose nearest lab is it (the parent's, every row).
  const parentCount = refs.cell.components.length;
  const newLab = refs.image.components.length;
  const componentLab = Int32Array.from(wide.components, (_, c) =>
    c < parentCount ? (refs.cell.componentLab?.[c] ?? -1) : newLab,
  );
  return { ...refs, cell: { ...wide, componentLab }, image };
}

/** The distances to the nearest of a reference's first components and to the nearest of its last `count`. */
function splitDistance(ref: GaussianReference, count: number, x: Float32Array, d: number, r: number) {
  const all = componentDistances(ref, x, d, r);
  const cut = all.length - count;
  return { parent: Math.min(...all.subarray(0, cut)), added: Math.min(...all.subarray(cut)) };
}

/**
 * The largest factor s ≤ 1 on the added components' distances with which at most the check's share
 * (1 − quantile) of the rows is over the threshold, a row's distance being min(parent, s · added): rows the
 * parent's components already pass need nothing, so a lab the parent knew keeps s = 1.
 */
export function scaleFor(rows: { parent: number; added: number }[], threshold: number, q: number): number {
  const allowed = Math.floor((1 - q) * rows.length);
  // Each row the parent's components flag passes once s ≤ threshold / added; the most willing pass first.
  const needs = rows
    .filter((r) => r.parent > threshold)
    .map((r) => threshold / r.added)
    .sort((a, b) => b - a);
  if (needs.length <= allowed) return 1;
  return Math.min(1, needs[needs.length - allowed - 1]);
}

/**
 * The factors that put the reviewed lab's new components on the card's thresholds: for each fold of the
 * cells (grouped by image), the references widened by the other folds measure the fold's cells (first view),
 * and each factor is scaleFor those distances (never above 1: a factor never tightens a check).
 */
export function reviewedLabScales(
  refs: FamiliarityReferences,
  fam: FamiliarityRecord,
  rows: CellRows,
  cells: CellInfo[],
  members: number[],
  classes: string[],
  seed: number,
): ReviewedLabScales {
  const images = new Map<number, Set<string>>();
  for (const i of members)
    images.set(cells[i].labelIndex, (images.get(cells[i].labelIndex) ?? new Set()).add(cells[i].group));
  const folds = Math.min(SCALE_FOLDS, ...[...images.values()].map((s) => s.size));
  if (folds < 2) return { cell: 1, image: 1 };
  const foldOf = groupedFolds(cells, members, folds, seed);
  const lab = labName(refs.image.components);
  const cellD: { parent: number; added: number }[] = [];
  const imageD: { parent: number; added: number }[] = [];
  for (let f = 0; f < folds; f++) {
    const wide = widen(
      refs,
      rows,
      cells,
      members.filter((i) => foldOf.get(i) !== f),
      classes,
      lab,
    );
    const added = wide.cell.components.length - refs.cell.components.length;
    const test = cellData(
      rows,
      cells,
      members.filter((i) => foldOf.get(i) === f),
      classes.length,
      true,
    );
    const newLab = wide.image.components.length - 1;
    for (let r = 0; r < test.n; r++) {
      const split = splitDistance(wide.cell, added, test.x, rows.d, r);
      // A cell nearer another lab is measured by the parent's components only (cellMahalanobis).
      if (nearestComponent(wide.image, test.x, rows.d, r) !== newLab) split.added = Infinity;
      cellD.push(split);
      imageD.push(splitDistance(wide.image, 1, test.x, rows.d, r));
    }
  }
  return {
    cell: scaleFor(cellD, fam.cell.threshold, fam.cell.quantile),
    image: scaleFor(imageD, fam.image.threshold, fam.image.quantile),
  };
}

/** The parent's checks (parentFamiliarity) widened by the given reviewed cells with the given scales. */
export function reviewedFamiliarity(
  parent: { refs: FamiliarityReferences; fam: FamiliarityRecord },
  classes: string[],
  rows: CellRows,
  cells: CellInfo[],
  members: number[],
  scales: ReviewedLabScales,
): ReviewedFamiliarity {
  const { refs, fam } = parent;
  const lab = labName(refs.image.components);
  const wide = widen(refs, rows, cells, members, classes, lab);
  const added = wide.cell.components.length - refs.cell.components.length;
  const cell = scaleNewComponents(wide.cell, added, scales.cell);
  const image = scaleNewComponents(wide.image, 1, scales.image);
  const out: FamiliarityReferences = { cell, image };
  let labThreshold: number | undefined;
  if (refs.disagreement && fam.disagreement) {
    const h = refs.disagreement;
    const first = cellData(rows, cells, members, classes.length, true);
    const scores = Float64Array.from({ length: first.n }, (_, r) => disagreementOf(h, first.x, rows.d, r));
    labThreshold = quantile(scores, fam.disagreement.quantile);
    out.disagreement = { ...h, thresholds: Float32Array.from([...h.thresholds, labThreshold]) };
  }
  let nbThreshold: number | undefined;
  if (refs.neighbours && fam.neighbours) {
    const grown = withReviewedCells(
      refs.neighbours,
      rows,
      cells,
      members,
      classes.length,
      fam.neighbours.quantile,
    );
    out.neighbours = grown.reference;
    nbThreshold = grown.threshold;
  }
  // The review budget capped the parent's low-confidence threshold by its head's confidences on its
  // validation images; the candidate keeps that threshold, but its per-lab review rates are not the
  // candidate's (its review rate is measured on the held-back reviewed cells instead). The validation rates
  // were of the parent's labs before the reviewed lab joined.
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  const { reviewBudget, validation, ...kept } = fam;
  const record: FamiliarityRecord = {
    ...kept,
    cell: { ...fam.cell, components: cell.components },
    image: { ...fam.image, components: image.components },
    ...(fam.disagreement && labThreshold !== undefined
      ? {
          disagreement: {
            ...fam.disagreement,
            thresholds: { ...fam.disagreement.thresholds, [lab]: labThreshold },
          },
        }
      : {}),
    ...(fam.neighbours && out.neighbours && nbThreshold !== undefined
      ? {
          neighbours: {
            ...fam.neighbours,
            rows: out.neighbours.rows.length / out.neighbours.bias.length,
            thresholds: { ...fam.neighbours.thresholds, [lab]: nbThreshold },
          },
        }
      : {}),
    reviewedLab: {
      name: lab,
      cells: members.length,
      scales,
      method:
        "The reviewed cells joined the parent's references: the lab as a new image component, its classes as " +
        "new cell components, the shared covariance the parent's plus the lab's within-component scatter (the " +
        "parent's components and thresholds unchanged; the lab's class centres measure only crops whose nearest " +
        "lab is it). The new components' distances are multiplied by the " +
        'scales, chosen so the thresholds flag about their quantile of reviewed cells left out of the fit ' +
        '(3-fold, grouped by image; never above 1). The disagreement threshold of the lab is that quantile of ' +
        "the reviewed cells' disagreement. The reviewed cells join the stored cells of the nearest-cells check, " +
        "whose threshold for the lab is that quantile of the reviewed cells' distances to the stored cells of " +
        'other images.',
    },
  };
  return {
    references: out,
    record,
    flags: (x, n, d) => familiarityFlags(out, fam, x, n, d),
  };
}

/** The unfamiliar_cell / unfamiliar_image decisions of the references on raw feature rows. */
export function familiarityFlags(
  refs: FamiliarityReferences,
  fam: FamiliarityRecord,
  x: Float32Array,
  n: number,
  d: number,
): Uint8Array {
  const out = new Uint8Array(n);
  for (let r = 0; r < n; r++)
    out[r] =
      cellDistance(refs, x, d, r) > fam.cell.threshold ||
      referenceDistance(refs.image, x, d, r) > fam.image.threshold
        ? 1
        : 0;
  return out;
}

/**
 * The nearest-cells check with the reviewed cells (first view) stored too, and its threshold for the reviewed
 * lab: the quantile of each reviewed cell's score against the stored cells of other images (its own image's
 * cells, itself included, would make every score small).
 */
function withReviewedCells(
  nb: NeighbourReference,
  rows: CellRows,
  cells: CellInfo[],
  members: number[],
  k: number,
  q: number,
): { reference: NeighbourReference; threshold: number } {
  const first = cellData(rows, cells, members, k, true);
  const r = nb.bias.length;
  const added = new Float32Array(first.n * r);
  for (let i = 0; i < first.n; i++) added.set(projectUnit(nb, first.x, rows.d, i), i * r);
  const group = first.rows.map((row) => cells[rows.cell[row]].group);
  const scores = Float64Array.from({ length: first.n }, (_, i) => {
    const others = group.flatMap((g, j) => (g === group[i] ? [] : [j]));
    const kept = new Float32Array(nb.rows.length + others.length * r);
    kept.set(nb.rows);
    others.forEach((j, o) => kept.set(added.subarray(j * r, (j + 1) * r), nb.rows.length + o * r));
    return neighbourDistance({ ...nb, rows: kept }, first.x, rows.d, i);
  });
  const stored = new Float32Array(nb.rows.length + added.length);
  stored.set(nb.rows);
  stored.set(added, nb.rows.length);
  const threshold = quantile(scores, q);
  return {
    reference: { ...nb, rows: stored, thresholds: Float32Array.from([...nb.thresholds, threshold]) },
    threshold,
  };
}
