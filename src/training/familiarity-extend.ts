/**
 * Widens a fitted familiarity reference (model/familiarity.ts) to a new lab without the rows it was fitted
 * on: new components (the lab, or the lab's classes) get centres from the new rows, and the shared covariance
 * C becomes C' = C + (S − C)₊, S the new rows' within-component scatter and (·)₊ the positive part.
 *
 * Why not a refit: the parent's training rows are not at hand (a model file holds only the fitted
 * reference). Why this form: C' ⪰ C, so no row is further from a parent's centre than before and the parent's
 * thresholds (quantiles of its validation rows' distances) flag no more of the parent's labs than they did;
 * and C' ⪰ S, so the new lab's own spread is expected; where the lab varies no more than the parent's labs
 * did, C' = C. (C + S, tried first, doubled the variance where a lab varies as the parent's do, and loosened
 * the cell check on the parent's labs for nothing.)
 *
 * Cost: C is its top eigenvectors V (d×m) with their variances and one residual variance σ² elsewhere;
 * S = YᵀY (Y: the new rows, centred and weighted). Outside span(V, Yᵀ), C' is σ²·I, so everything is done in
 * that span: (m + rows)-square problems instead of d-square ones.
 */
import { DatasetError } from '../errors.js';
import { projectCenters, type GaussianReference } from '../model/familiarity.js';
import { orthonormaliseColumns, symmetricEigen } from './linalg.js';

/**
 * `ref` with components `names` added, fitted on the n×D rows `x` (row r belongs to new component
 * `component[r]`). Every new component needs at least two rows. Standardisation and rank stay the parent's.
 */
export function extendReference(
  ref: GaussianReference,
  x: Float32Array,
  n: number,
  D: number,
  component: ArrayLike<number>,
  names: string[],
): GaussianReference {
  const [start, end] = ref.columns;
  const d = end - start;
  const m = ref.invSqrtEig.length;
  const c = names.length;
  const rowsOf: number[][] = Array.from({ length: c }, () => []);
  for (let r = 0; r < n; r++) rowsOf[component[r]].push(r);
  rowsOf.forEach((rows, i) => {
    if (rows.length < 2) throw new DatasetError(`Familiarity needs at least two rows of '${names[i]}'.`);
  });
  const z = (r: number, j: number) => (x[r * D + start + j] - ref.mean[j]) / ref.std[j];
  const centers = new Float64Array(c * d);
  rowsOf.forEach((rows, i) => {
    for (const r of rows) for (let j = 0; j < d; j++) centers[i * d + j] += z(r, j) / rows.length;
  });

  // Y (n×d): S = YᵀY is the mean over new components of their within-component covariance (as fitReference
  // weighs components), so a lab's scatter counts once however many components it is split into.
  const y = new Float64Array(n * d);
  rowsOf.forEach((rows, i) => {
    const w = Math.sqrt(1 / (c * rows.length));
    for (const r of rows) for (let j = 0; j < d; j++) y[r * d + j] = w * (z(r, j) - centers[i * d + j]);
  });

  // The parent's covariance in its stored form: variances λ on V, σ² on the rest.
  const sigma2 = ref.residualVariance;
  const extra = Float64Array.from(ref.invSqrtEig, (v) => 1 / (v * v) - sigma2);

  // Q: an orthonormal basis of span(V, Yᵀ) (d×q, q = m + n, columns of Yᵀ already in V's span vanish).
  const q = m + n;
  const basis = new Float64Array(d * q);
  for (let j = 0; j < d; j++) {
    for (let i = 0; i < m; i++) basis[j * q + i] = ref.basis[j * m + i];
    for (let r = 0; r < n; r++) basis[j * q + m + r] = y[r * d + j];
  }
  orthonormaliseColumns(basis, d, q);

  // B = Qᵀ C' Q = (VᵀQ)ᵀ diag(λ − σ²) (VᵀQ) + σ² Qᵀ Q + (Y Q)ᵀ (Y Q).
  const vq = new Float64Array(m * q);
  const yq = new Float64Array(n * q);
  for (let j = 0; j < d; j++) {
    const row = j * q;
    for (let i = 0; i < m; i++) {
      const v = ref.basis[j * m + i];
      if (v !== 0) for (let a = 0; a < q; a++) vq[i * q + a] += v * basis[row + a];
    }
    for (let r = 0; r < n; r++) {
      const v = y[r * d + j];
      if (v !== 0) for (let a = 0; a < q; a++) yq[r * q + a] += v * basis[row + a];
    }
  }
  const norms = new Float64Array(q);
  for (let j = 0; j < d; j++) for (let a = 0; a < q; a++) norms[a] += basis[j * q + a] ** 2;
  // In Q's coordinates: the parent's covariance P = Qᵀ C Q and the lab's scatter L = Qᵀ S Q.
  const parentB = new Float64Array(q * q);
  const diff = new Float64Array(q * q);
  for (let a = 0; a < q; a++)
    for (let bb = a; bb < q; bb++) {
      let p = a === bb ? sigma2 * norms[a] : 0;
      for (let i = 0; i < m; i++) p += vq[i * q + a] * extra[i] * vq[i * q + bb];
      let l = 0;
      for (let r = 0; r < n; r++) l += yq[r * q + a] * yq[r * q + bb];
      parentB[a * q + bb] = parentB[bb * q + a] = p;
      diff[a * q + bb] = diff[bb * q + a] = l - p;
    }
  // C' = C + (S − C)₊: the parent's covariance, plus variance only where the lab varies more than it (the
  // positive part of S − C). C' ⪰ C and C' ⪰ S: no row comes further from a parent's centre, and a lab that
  // varies as the parent's labs did leaves the covariance as it was.
  const gap = symmetricEigen(diff, q);
  const b = parentB;
  let added = 0;
  for (let k = 0; k < q; k++) {
    const mu = gap.values[k];
    if (!(mu > 0)) continue;
    added += mu;
    for (let a = 0; a < q; a++) {
      const ua = mu * gap.vectors[a * q + k];
      if (ua !== 0) for (let bb = 0; bb < q; bb++) b[a * q + bb] += ua * gap.vectors[bb * q + k];
    }
  }
  const eig = symmetricEigen(b, q);

  // Keep the parent's rank; the rest shares one variance, as fitReference sets it (trace − kept) / (d − m).
  let trace = d * sigma2 + added;
  for (const e of extra) trace += e;
  const order = Array.from({ length: q }, (_, i) => i).sort((i, j) => eig.values[j] - eig.values[i]);
  const top = order.slice(0, m);
  let kept = 0;
  for (const i of top) kept += Math.max(eig.values[i], 0);
  const residualVariance = Math.max((trace - kept) / Math.max(1, d - m), 1e-3 * (trace / d), sigma2);
  const vectors = new Float32Array(d * m);
  for (let j = 0; j < d; j++)
    for (let k = 0; k < m; k++) {
      let s = 0;
      const col = top[k];
      for (let a = 0; a < q; a++) s += basis[j * q + a] * eig.vectors[a * q + col];
      vectors[j * m + k] = s;
    }
  const invSqrtEig = Float32Array.from(top, (i) => 1 / Math.sqrt(Math.max(eig.values[i], residualVariance)));
  const total = ref.components.length + c;
  const allCenters = new Float32Array(total * d);
  allCenters.set(ref.centers);
  allCenters.set(centers, ref.centers.length);
  const centerProjections = projectCenters(allCenters, vectors, total, d, m);
  return {
    columns: [start, end],
    mean: ref.mean,
    std: ref.std,
    components: [...ref.components, ...names],
    centers: allCenters,
    basis: vectors,
    invSqrtEig,
    centerProjections,
    residualVariance,
    // The parent's components keep their factors; the new ones start at 1 (see scaleNewComponents).
    scales: Float32Array.from({ length: total }, (_, i) =>
      i < ref.components.length ? (ref.scales?.[i] ?? 1) : 1,
    ),
  };
}

/** `ref` with the distance factor of its last `count` components set to `scale`. */
export function scaleNewComponents(ref: GaussianReference, count: number, scale: number): GaussianReference {
  const c = ref.components.length;
  const scales = Float32Array.from({ length: c }, (_, i) =>
    i >= c - count ? scale : (ref.scales?.[i] ?? 1),
  );
  return { ...ref, scales };
}
