/**
 * A third way to know a cell type the model never learned: how far a cell lies from the training cells
 * themselves, not from a class centre. The features are projected on their main directions, scaled to unit
 * length, and compared with a few hundred stored training cells per class and lab; the score is one minus the
 * cosine similarity of the k-th nearest (Sun et al. 2022, "Out-of-distribution detection with deep nearest
 * neighbors"). A class centre cannot tell a cell between two classes' clouds from one inside them; the nearest
 * cells can. Thresholds are per training lab, picked by the image reference's nearest lab, as the block
 * heads' are. Where this came from: BENCHMARKS.md, "Leave one class out: scores tried" (scripts/loco-study/).
 */

/** The projection, the stored cells and the per-lab thresholds, as stored in the model file and the card. */
export interface NeighbourReference {
  /** r×D projection of the raw features (standardisation folded in) and its r offsets. */
  weight: Float32Array;
  bias: Float32Array;
  /** M stored training cells, projected and scaled to unit length (M×r). */
  rows: Float32Array;
  /** Which neighbour's similarity is the score (1 = the nearest). */
  k: number;
  /** One threshold per image-reference component (training lab), in its component order. */
  thresholds: Float32Array;
  /** The cell check's Mahalanobis threshold: scores over their lab threshold are put on its scale. */
  cellScale: number;
}

/** Row `row` of n×D features projected and scaled to unit length (r values). */
export function projectUnit(
  ref: Pick<NeighbourReference, 'weight' | 'bias'>,
  features: Float32Array,
  D: number,
  row: number,
): Float64Array {
  const r = ref.bias.length;
  const p = new Float64Array(r);
  let norm = 0;
  for (let i = 0; i < r; i++) {
    let s = ref.bias[i];
    for (let j = 0; j < D; j++) s += ref.weight[i * D + j] * features[row * D + j];
    p[i] = s;
    norm += s * s;
  }
  norm = Math.sqrt(Math.max(norm, 1e-24));
  for (let i = 0; i < r; i++) p[i] /= norm;
  return p;
}

/**
 * One minus the cosine similarity of the k-th nearest stored cell to row `row`: the reference
 * implementation, which the model file computes in its graph (familiarity-graph.ts).
 */
export function neighbourDistance(
  ref: Pick<NeighbourReference, 'weight' | 'bias' | 'rows' | 'k'>,
  features: Float32Array,
  D: number,
  row: number,
): number {
  const u = projectUnit(ref, features, D, row);
  const r = u.length;
  const m = ref.rows.length / r;
  // The k largest similarities, kept sorted descending (k is small).
  const top = new Float64Array(ref.k).fill(-Infinity);
  for (let i = 0; i < m; i++) {
    let s = 0;
    for (let j = 0; j < r; j++) s += u[j] * ref.rows[i * r + j];
    if (s <= top[ref.k - 1]) continue;
    let at = ref.k - 1;
    while (at > 0 && top[at - 1] < s) {
      top[at] = top[at - 1];
      at--;
    }
    top[at] = s;
  }
  return 1 - top[ref.k - 1];
}
