/**
 * The little dense linear algebra the familiarity reference needs: a symmetric eigensolver for small
 * matrices (cyclic Jacobi) and the top eigenpairs of a large symmetric matrix by randomised subspace
 * iteration (Halko, Martinsson & Tropp 2011). Float64 throughout; matrices are row-major.
 */
import { createRng } from '../imaging/random.js';

/** Eigenpairs of a symmetric n×n matrix, eigenvalues descending; `vectors` holds them as columns (n×n). */
export function symmetricEigen(a: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const m = Float64Array.from(a);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < 60; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += m[p * n + q] ** 2;
    if (off < 1e-22 * Math.max(1e-300, frobenius2(m))) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = m[p * n + q];
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (m[q * n + q] - m[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const mkp = m[k * n + p];
          const mkq = m[k * n + q];
          m[k * n + p] = c * mkp - s * mkq;
          m[k * n + q] = s * mkp + c * mkq;
        }
        for (let k = 0; k < n; k++) {
          const mpk = m[p * n + k];
          const mqk = m[q * n + k];
          m[p * n + k] = c * mpk - s * mqk;
          m[q * n + k] = s * mpk + c * mqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p];
          const vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => m[j * n + j] - m[i * n + i]);
  const values = Float64Array.from(order, (i) => m[i * n + i]);
  const vectors = new Float64Array(n * n);
  order.forEach((src, dst) => {
    for (let k = 0; k < n; k++) vectors[k * n + dst] = v[k * n + src];
  });
  return { values, vectors };
}

function frobenius2(m: Float64Array): number {
  let s = 0;
  for (const x of m) s += x * x;
  return s;
}

/** Orthonormalises the r columns of the n×r matrix q in place (modified Gram–Schmidt, twice for safety). */
export function orthonormaliseColumns(q: Float64Array, n: number, r: number): void {
  for (let pass = 0; pass < 2; pass++) {
    for (let j = 0; j < r; j++) {
      for (let i = 0; i < j; i++) {
        let dot = 0;
        for (let k = 0; k < n; k++) dot += q[k * r + i] * q[k * r + j];
        for (let k = 0; k < n; k++) q[k * r + j] -= dot * q[k * r + i];
      }
      let norm = 0;
      for (let k = 0; k < n; k++) norm += q[k * r + j] ** 2;
      norm = Math.sqrt(norm) || 1;
      for (let k = 0; k < n; k++) q[k * r + j] /= norm;
    }
  }
}

/** c (n×r) = a (n×n, symmetric) · b (n×r). */
function symTimes(a: Float64Array, b: Float64Array, n: number, r: number): Float64Array {
  const c = new Float64Array(n * r);
  for (let i = 0; i < n; i++) {
    const ci = i * r;
    for (let k = 0; k < n; k++) {
      const aik = a[i * n + k];
      if (aik === 0) continue;
      const bk = k * r;
      for (let j = 0; j < r; j++) c[ci + j] += aik * b[bk + j];
    }
  }
  return c;
}

/**
 * The `rank` largest eigenpairs of a symmetric positive semi-definite n×n matrix by randomised subspace
 * iteration: exact enough for a whitening basis at a fraction of a full decomposition's cost.
 */
export function topEigen(
  a: Float64Array,
  n: number,
  rank: number,
  options: { oversample?: number; iterations?: number; seed?: number } = {},
): { values: Float64Array; vectors: Float64Array } {
  const r = Math.min(n, rank + (options.oversample ?? 16));
  const rng = createRng(options.seed ?? 1);
  let q: Float64Array = new Float64Array(n * r);
  for (let i = 0; i < q.length; i++) q[i] = rng() - 0.5;
  orthonormaliseColumns(q, n, r);
  for (let it = 0; it < (options.iterations ?? 4); it++) {
    q = symTimes(a, q, n, r);
    orthonormaliseColumns(q, n, r);
  }
  // Rayleigh–Ritz: B = Qᵀ A Q (r×r), whose eigenvectors rotate Q onto A's.
  const aq = symTimes(a, q, n, r);
  const b = new Float64Array(r * r);
  for (let i = 0; i < r; i++)
    for (let j = 0; j < r; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += q[k * r + i] * aq[k * r + j];
      b[i * r + j] = s;
    }
  for (let i = 0; i < r; i++)
    for (let j = i + 1; j < r; j++) b[i * r + j] = b[j * r + i] = (b[i * r + j] + b[j * r + i]) / 2;
  const small = symmetricEigen(b, r);
  const m = Math.min(rank, r);
  const vectors = new Float64Array(n * m);
  for (let k = 0; k < n; k++)
    for (let j = 0; j < m; j++) {
      let s = 0;
      for (let i = 0; i < r; i++) s += q[k * r + i] * small.vectors[i * r + j];
      vectors[k * m + j] = s;
    }
  return { values: small.values.slice(0, m), vectors };
}
