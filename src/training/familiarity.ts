/**
 * Fits the familiarity references a model uses to know what it does not know (model/familiarity.ts): one
 * over every feature with a centre per class (is this cell like any class it learned?) and one over the
 * early blocks' features with a centre per training lab (do this image's stain, optics and texture look
 * like a lab it learned from?). Thresholds are chosen on validation rows, never on the rows fitted.
 */
import { DatasetError } from '../errors.js';
import { createRng, shuffled } from '../imaging/random.js';
import type { GaussianReference } from '../model/familiarity.js';
import { nearestComponent, projectCenters, referenceDistance } from '../model/familiarity.js';
import type { FamiliarityReferences } from '../model/familiarity.js';
import type { FamiliarityRecord } from '../model/types.js';
import { topEigen } from './linalg.js';
import { quantile } from './quantile.js';
import { DISAGREEMENT_DEFAULTS, disagreementBlocks, fitDisagreement } from './disagreement.js';
import { fitNeighbours, NEIGHBOUR_DEFAULTS } from './neighbours.js';

export interface FitReferenceOptions {
  columns: [number, number];
  /** Eigenvectors kept (the rest share one variance). */
  rank: number;
  /** Rows used for the covariance at most, drawn evenly across components (cost grows with rows × d²). */
  maxRows?: number;
  seed?: number;
}

/**
 * Fits a reference on rows of n×D features whose component (class or source) is `component[r]` in
 * [0, names.length). Every component needs at least two rows.
 */
export function fitReference(
  features: Float32Array,
  n: number,
  D: number,
  component: ArrayLike<number>,
  names: string[],
  o: FitReferenceOptions,
): GaussianReference {
  const [start, end] = o.columns;
  const d = end - start;
  const c = names.length;
  if (!(start >= 0 && end <= D && d > 1)) throw new DatasetError('Familiarity columns are out of range.');
  const rowsOf: number[][] = Array.from({ length: c }, () => []);
  for (let r = 0; r < n; r++) rowsOf[component[r]].push(r);
  rowsOf.forEach((rows, i) => {
    if (rows.length < 2) throw new DatasetError(`Familiarity needs at least two rows of '${names[i]}'.`);
  });

  // Standardise with every component weighing the same, so a large class does not set the scale alone.
  const mean = new Float64Array(d);
  const sq = new Float64Array(d);
  for (const rows of rowsOf) {
    const w = 1 / (c * rows.length);
    for (const r of rows)
      for (let j = 0; j < d; j++) {
        const v = features[r * D + start + j];
        mean[j] += w * v;
        sq[j] += w * v * v;
      }
  }
  const std = new Float64Array(d);
  for (let j = 0; j < d; j++) std[j] = Math.sqrt(Math.max(sq[j] - mean[j] ** 2, 0)) + 1e-6;
  const z = (r: number, j: number) => (features[r * D + start + j] - mean[j]) / std[j];

  const centers = new Float64Array(c * d);
  rowsOf.forEach((rows, i) => {
    for (const r of rows) for (let j = 0; j < d; j++) centers[i * d + j] += z(r, j) / rows.length;
  });

  // Within-component covariance from an even draw of rows (upper triangle, then mirrored).
  const rng = createRng(o.seed ?? 7);
  const perComponent = Math.max(2, Math.floor((o.maxRows ?? 4000) / c));
  const drawn = rowsOf.map((rows) => shuffled(rows, rng).slice(0, perComponent));
  const cov = new Float64Array(d * d);
  const x = new Float64Array(d);
  let weightSum = 0;
  drawn.forEach((rows, i) => {
    const w = 1 / rows.length;
    for (const r of rows) {
      for (let j = 0; j < d; j++) x[j] = z(r, j) - centers[i * d + j];
      for (let a = 0; a < d; a++) {
        const xa = w * x[a];
        const base = a * d;
        for (let b = a; b < d; b++) cov[base + b] += xa * x[b];
      }
    }
    weightSum += 1;
  });
  for (let a = 0; a < d; a++)
    for (let b = a; b < d; b++) cov[b * d + a] = cov[a * d + b] = cov[a * d + b] / weightSum;
  let trace = 0;
  for (let a = 0; a < d; a++) trace += cov[a * d + a];

  const rank = Math.min(o.rank, d - 1);
  const eig = topEigen(cov, d, rank, { seed: o.seed ?? 7 });
  let kept = 0;
  for (const v of eig.values) kept += Math.max(v, 0);
  // The rest's mean variance; floored so a direction never seen varying still has a finite scale.
  const floor = 1e-3 * (trace / d);
  const residualVariance = Math.max((trace - kept) / Math.max(1, d - rank), floor);
  const invSqrtEig = Float32Array.from(eig.values, (v) => 1 / Math.sqrt(Math.max(v, residualVariance)));
  const centerProjections = projectCenters(centers, eig.vectors, c, d, eig.values.length);
  return {
    columns: [start, end],
    mean: Float32Array.from(mean),
    std: Float32Array.from(std),
    components: names,
    centers: Float32Array.from(centers),
    basis: Float32Array.from(eig.vectors),
    invSqrtEig,
    centerProjections,
    residualVariance,
  };
}

/** Distances of many rows (see referenceDistance). */
export function referenceDistances(
  ref: GaussianReference,
  features: Float32Array,
  D: number,
  rows: ArrayLike<number>,
): Float64Array {
  return Float64Array.from(rows as ArrayLike<number>, (r) => referenceDistance(ref, features, D, r));
}

/** Backbone features of one view per image, with what each row is and which side of the split it is on. */
export interface LabelledFeatures {
  /** n×d */
  x: Float32Array;
  n: number;
  d: number;
  /** Class index (into `classes`) and source index (into `sources`) of each row. */
  label: ArrayLike<number>;
  source: ArrayLike<number>;
  /** 1 for a validation row: thresholds are chosen on these, the references fitted on the others. */
  isVal: ArrayLike<number>;
}

/**
 * The rule, fixed before any run measured it (BENCHMARKS.md reports what it gives): a cell is unfamiliar
 * beyond the 99.5th percentile of validation cells' class distance (97.5th until the nearest-cells check
 * took most of its share of the review budget: it now guards against far-off inputs), an image beyond the
 * 99th percentile of their lab distance; each check alone flags that share of the known labs' own images.
 */
export const FAMILIARITY_DEFAULTS = {
  cellQuantile: 0.995,
  imageQuantile: 0.99,
  cellRank: 128,
  imageRank: 64,
  /** Block-head disagreement as part of the cell check (training/disagreement.ts), where the blocks exist. */
  disagreement: true,
  disagreementQuantile: DISAGREEMENT_DEFAULTS.quantile,
  /** The nearest stored training cells as part of the cell check too (training/neighbours.ts). */
  neighbours: true,
  neighbourQuantile: NEIGHBOUR_DEFAULTS.quantile,
};

/**
 * Fits both references on the training rows and sets their thresholds on the validation rows. The image
 * reference reads the first two feature blocks (`featureDims`): early layers carry stain, scale and
 * texture rather than cell type, so a lab's images cluster there whatever their class.
 */
export function fitFamiliarity(
  f: LabelledFeatures,
  classes: string[],
  sources: string[],
  featureDims: number[],
  o: Partial<typeof FAMILIARITY_DEFAULTS> & { seed?: number } = {},
): {
  references: FamiliarityReferences;
  record: FamiliarityRecord;
  /** The validation rows (indices into f) and whether the checks flag each. */
  val: { rows: number[]; flagged: Uint8Array };
} {
  const opts = { ...FAMILIARITY_DEFAULTS, ...o };
  const train: number[] = [];
  const val: number[] = [];
  for (let r = 0; r < f.n; r++) (f.isVal[r] ? val : train).push(r);
  if (val.length < 20) throw new DatasetError('Familiarity thresholds need at least 20 validation images.');
  const sub = (rows: number[]) => {
    const x = new Float32Array(rows.length * f.d);
    rows.forEach((r, j) => x.set(f.x.subarray(r * f.d, (r + 1) * f.d), j * f.d));
    return x;
  };
  const trainX = sub(train);
  const valX = sub(val);
  const valRows = val.map((_, j) => j);
  const early = featureDims.length > 2 ? featureDims[0] + featureDims[1] : f.d;
  // Only the sources that have training rows are components (a source may be validation-only).
  const present = sources.filter((_, s) => train.some((r) => f.source[r] === s));
  const fit = (
    component: (r: number) => number,
    names: string[],
    columns: [number, number],
    rank: number,
    q: number,
  ) => {
    const ref = fitReference(trainX, train.length, f.d, train.map(component), names, {
      columns,
      rank,
      seed: opts.seed,
    });
    const distances = referenceDistances(ref, valX, f.d, valRows);
    const threshold = quantile(distances, q);
    return { ref, distances, threshold };
  };
  const cell = fit((r) => f.label[r], classes, [0, f.d], opts.cellRank, opts.cellQuantile);
  const image = fit(
    (r) => present.indexOf(sources[f.source[r]]),
    present,
    [0, early],
    opts.imageRank,
    opts.imageQuantile,
  );
  // The training and validation rows as the disagreement and nearest-cells fits take them.
  const trainSet = {
    x: trainX,
    n: train.length,
    label: train.map((r) => f.label[r]),
    source: train.map((r) => f.source[r]),
  };
  // The block heads' disagreement joins the cell check where the backbone has the blocks (model/disagreement.ts).
  const blocks = opts.disagreement ? disagreementBlocks(featureDims) : null;
  // Both are thresholded per training lab: each validation row's lab is found once, for both.
  const valSet = {
    x: valX,
    n: val.length,
    lab:
      blocks || opts.neighbours
        ? Int32Array.from(valRows, (r) => nearestComponent(image.ref, valX, f.d, r))
        : new Int32Array(0),
    labs: image.ref.components.length,
  };
  const dis = blocks
    ? fitDisagreement(trainSet, valSet, f.d, classes.length, blocks, cell.threshold, {
        quantile: opts.disagreementQuantile,
      })
    : null;
  const nb = opts.neighbours
    ? fitNeighbours(trainSet, valSet, f.d, cell.threshold, {
        quantile: opts.neighbourQuantile,
        seed: opts.seed,
      })
    : null;
  let flagged = 0;
  const byReason = { unfamiliar_cell: 0, unfamiliar_image: 0, disagreement: 0, neighbours: 0 };
  const valFlags = new Uint8Array(val.length);
  for (let j = 0; j < val.length; j++) {
    const disagrees = dis?.flagged[j] === 1;
    const far = nb?.flagged[j] === 1;
    const c = cell.distances[j] > cell.threshold || disagrees || far;
    const i = image.distances[j] > image.threshold;
    if (disagrees) byReason.disagreement++;
    if (far) byReason.neighbours++;
    if (c) byReason.unfamiliar_cell++;
    if (i) byReason.unfamiliar_image++;
    if (c || i) {
      flagged++;
      valFlags[j] = 1;
    }
  }
  const check = (x: typeof cell, q: number) => ({
    threshold: x.threshold,
    quantile: q,
    columns: x.ref.columns,
    components: x.ref.components,
    rank: x.ref.invSqrtEig.length,
  });
  return {
    val: { rows: val, flagged: valFlags },
    references: {
      cell: cell.ref,
      image: image.ref,
      ...(dis && { disagreement: dis.heads }),
      ...(nb && { neighbours: nb.reference }),
    },
    record: {
      method:
        'Mahalanobis distance to the nearest class centre (all features) and to the nearest training lab ' +
        '(first two feature blocks), shared covariance kept as its top eigenvectors plus one residual variance',
      cell: check(cell, opts.cellQuantile),
      image: check(image, opts.imageQuantile),
      ...(dis && {
        disagreement: {
          method:
            'mean pairwise total-variation distance between softmax heads on feature blocks ' +
            blocks!.map(([a, b]) => `[${a}, ${b})`).join(', ') +
            `, threshold the ${opts.disagreementQuantile} quantile of each training lab's validation cells ` +
            '(lab: the nearest image-reference component); part of unfamiliar_cell',
          quantile: opts.disagreementQuantile,
          blocks: blocks!,
          thresholds: Object.fromEntries(image.ref.components.map((c, i) => [c, dis.heads.thresholds[i]])),
        },
      }),
      ...(nb && {
        neighbours: {
          method:
            `one minus the cosine similarity of the ${nb.reference.k}th nearest of ${nb.reference.rows.length / nb.reference.bias.length} ` +
            `stored training cells (up to ${NEIGHBOUR_DEFAULTS.perClassAndLab} per class and lab) on the standardised features' ` +
            `${nb.reference.bias.length} main directions, threshold the ${opts.neighbourQuantile} quantile of each ` +
            "training lab's validation cells (lab: the nearest image-reference component); part of unfamiliar_cell",
          quantile: opts.neighbourQuantile,
          k: nb.reference.k,
          dims: nb.reference.bias.length,
          rows: nb.reference.rows.length / nb.reference.bias.length,
          thresholds: Object.fromEntries(image.ref.components.map((c, i) => [c, nb.reference.thresholds[i]])),
        },
      }),
      validation: {
        n: val.length,
        reviewRate: flagged / val.length,
        byReason: {
          unfamiliar_cell: byReason.unfamiliar_cell / val.length,
          unfamiliar_image: byReason.unfamiliar_image / val.length,
          ...(dis && { disagreement: byReason.disagreement / val.length }),
          ...(nb && { neighbours: byReason.neighbours / val.length }),
        },
      },
    },
  };
}
