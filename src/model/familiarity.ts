/**
 * How familiar a cell or an image looks to a model: a Gaussian reference fitted on the training features
 * (one centre per component — per class for cells, per training lab for images — and one shared
 * within-component covariance), and the Mahalanobis distance to the nearest centre. The covariance is kept
 * as its top eigenvectors plus one variance for the rest, which keeps the directions in which the training
 * data never varied (where unfamiliar inputs tend to stray) without storing or inverting a d×d matrix.
 * Lee et al. 2018 ("A simple unified framework for detecting out-of-distribution samples") is the idea.
 */
import { disagreementOf, type DisagreementHeads } from './disagreement.js';
import { neighbourDistance, type NeighbourReference } from './neighbours.js';

/** The references a model uses to flag cells and images unlike its training data. */
export interface FamiliarityReferences {
  /** Over every feature, one centre per class: is this cell like any class the model learned? */
  cell: GaussianReference;
  /** Over the early blocks' features, one centre per training lab: stain, optics and texture. */
  image: GaussianReference;
  /**
   * Block heads whose disagreement also marks a cell unfamiliar (model/disagreement.ts), thresholded per
   * training lab (the image reference's components); absent in models familiarized before they existed.
   */
  disagreement?: DisagreementHeads;
  /**
   * Stored training cells whose k-th nearest also marks a cell unfamiliar (model/neighbours.ts), thresholded
   * per training lab as the block heads are; absent in models familiarized before it existed.
   */
  neighbours?: NeighbourReference;
}

/** A fitted reference, as stored in the model file (as graph constants) and, in short, in the card. */
export interface GaussianReference {
  /** The backbone feature columns it reads: [start, end). */
  columns: [number, number];
  /** Per-column standardisation (length d = end − start). */
  mean: Float32Array;
  std: Float32Array;
  /** Component names (classes or training sources) and their centres in standardised space (c×d). */
  components: string[];
  centers: Float32Array;
  /** Top eigenvectors of the within-component covariance, as columns (d×m), and 1/√eigenvalue (m). */
  basis: Float32Array;
  invSqrtEig: Float32Array;
  /** The centres projected on the basis (c×m), so a distance projects only the row. */
  centerProjections: Float32Array;
  /** Mean variance of the directions outside the basis. */
  residualVariance: number;
  /**
   * Per component, a factor on its distance (absent: 1 each). A component fitted on few rows (a lab added from
   * its reviewed cells, training/familiarity-extend.ts) is put on the scale of the threshold chosen for the
   * others, so one threshold serves all.
   */
  scales?: Float32Array;
  /**
   * Cell references only: per component, the image-reference component (lab) whose rows it measures, or −1
   * for rows of any lab (absent: −1 each). A lab's class centres fitted on few of its cells are loose (scaled
   * down), and would pass another lab's outliers if they measured every row.
   */
  componentLab?: Int32Array;
}

/**
 * Centres (c×d) projected on the basis (d×m): a reference's `centerProjections` (c×m), summed in double
 * precision whatever the inputs' precision, as every fit and the model file's reader compute them.
 */
export function projectCenters(
  centers: ArrayLike<number>,
  basis: ArrayLike<number>,
  c: number,
  d: number,
  m: number,
): Float32Array {
  const out = new Float32Array(c * m);
  for (let i = 0; i < c; i++)
    for (let k = 0; k < m; k++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += centers[i * d + j] * basis[j * m + k];
      out[i * m + k] = s;
    }
  return out;
}

/**
 * Squared Mahalanobis distance, divided by the dimension (so about 1 for a typical training row), from row
 * `row` of n×D features to the nearest centre. The reference implementation: the model file computes the
 * same in its graph (familiarity-graph.ts).
 */
export function referenceDistance(
  ref: GaussianReference,
  features: Float32Array,
  D: number,
  row: number,
): number {
  return Math.min(...componentDistances(ref, features, D, row));
}

/** The index of the nearest centre (for the image reference: the training lab a crop looks most like). */
export function nearestComponent(
  ref: GaussianReference,
  features: Float32Array,
  D: number,
  row: number,
): number {
  // Unscaled: a lab whose distances are scaled down must not draw the rows of the others.
  const d = componentDistances(ref, features, D, row, false);
  let best = 0;
  for (let c = 1; c < d.length; c++) if (d[c] < d[best]) best = c;
  return best;
}

/** The distance of row `row` to every centre (referenceDistance is their minimum). */
export function componentDistances(
  ref: GaussianReference,
  features: Float32Array,
  D: number,
  row: number,
  /** Multiply by the components' `scales` (false: the plain distances, as for choosing the nearest lab). */
  scaled = true,
): Float64Array {
  const [start, end] = ref.columns;
  const d = end - start;
  const m = ref.invSqrtEig.length;
  const x = new Float64Array(d);
  for (let j = 0; j < d; j++) x[j] = (features[row * D + start + j] - ref.mean[j]) / ref.std[j];
  const p = new Float64Array(m);
  for (let j = 0; j < d; j++) {
    const xj = x[j];
    if (xj === 0) continue;
    for (let i = 0; i < m; i++) p[i] += xj * ref.basis[j * m + i];
  }
  const out = new Float64Array(ref.components.length);
  for (let c = 0; c < ref.components.length; c++) {
    let total = 0;
    for (let j = 0; j < d; j++) total += (x[j] - ref.centers[c * d + j]) ** 2;
    let principal = 0;
    let projected = 0;
    for (let i = 0; i < m; i++) {
      const diff = p[i] - ref.centerProjections[c * m + i];
      projected += diff * diff;
      principal += (diff * ref.invSqrtEig[i]) ** 2;
    }
    const scale = scaled ? (ref.scales?.[c] ?? 1) : 1;
    out[c] = ((principal + Math.max(0, total - projected) / ref.residualVariance) / d) * scale;
  }
  return out;
}

/** The three parts of `cell_distance` for one row, the block heads' and nearest cells' over their lab's threshold. */
export interface CellDistanceParts {
  mahalanobis: number;
  /** Over the row's lab's threshold (1 = on the line); absent without the check. */
  disagreement?: number;
  neighbours?: number;
}

export function cellDistanceParts(
  refs: FamiliarityReferences,
  features: Float32Array,
  D: number,
  row: number,
): CellDistanceParts {
  const { disagreement: h, neighbours: nb } = refs;
  if (!h && !nb) return { mahalanobis: cellMahalanobis(refs, features, D, row) };
  // The row's lab, found once for the lab-specific class centres and the per-lab thresholds alike.
  const lab = nearestComponent(refs.image, features, D, row);
  return {
    mahalanobis: cellMahalanobis(refs, features, D, row, lab),
    ...(h && { disagreement: disagreementOf(h, features, D, row) / h.thresholds[lab] }),
    ...(nb && { neighbours: neighbourDistance(nb, features, D, row) / nb.thresholds[lab] }),
  };
}

/**
 * The model file's `cell_distance` for one row: the Mahalanobis distance to the nearest class or, where one
 * is higher, the block heads' disagreement or the nearest cells' distance over the threshold of the lab the
 * row looks most like, put on the Mahalanobis threshold's scale (`cellScale`), so one threshold serves every
 * check. The reference implementation of familiarity-graph.ts's graph.
 */
export function cellDistance(
  refs: FamiliarityReferences,
  features: Float32Array,
  D: number,
  row: number,
): number {
  const p = cellDistanceParts(refs, features, D, row);
  let out = p.mahalanobis;
  if (p.disagreement !== undefined) out = Math.max(out, p.disagreement * refs.disagreement!.cellScale);
  if (p.neighbours !== undefined) out = Math.max(out, p.neighbours * refs.neighbours!.cellScale);
  return out;
}

/**
 * The Mahalanobis part of `cell_distance`: the distance to the nearest class centre among those that measure
 * the row's lab (componentLab; the image reference's nearest component, unscaled).
 */
export function cellMahalanobis(
  refs: Pick<FamiliarityReferences, 'cell' | 'image'>,
  features: Float32Array,
  D: number,
  row: number,
  /** The row's lab where the caller has found it already (else found here, when it matters). */
  lab?: number,
): number {
  const labs = refs.cell.componentLab;
  if (!labs) return referenceDistance(refs.cell, features, D, row);
  lab ??= nearestComponent(refs.image, features, D, row);
  const all = componentDistances(refs.cell, features, D, row);
  let best = Infinity;
  for (let c = 0; c < all.length; c++) if (labs[c] < 0 || labs[c] === lab) best = Math.min(best, all[c]);
  return best;
}
