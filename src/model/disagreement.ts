/**
 * A second way to know a cell type the model never learned: three linear heads, each reading other feature
 * blocks (early texture and colour, middle shapes, late parts), agree on cells of a class they learned and
 * disagree on cells of none. The score is their mean pairwise total-variation distance (0 when the three
 * give identical probabilities, 1 when they share nothing). Thresholds are per training lab, because a lab's
 * own noise sets how much its known cells' heads disagree; the image reference's nearest lab picks which one.
 * Where this came from: BENCHMARKS.md, "Leave one class out: scores tried" (scripts/loco-study/).
 */

/** The heads and their per-lab thresholds, as stored in the model file (graph constants) and the card. */
export interface DisagreementHeads {
  /** Feature columns [start, end) each head reads. */
  blocks: [number, number][];
  /** Per head: k×d weights on RAW features (standardisation folded in) and k biases. */
  weights: Float32Array[];
  biases: Float32Array[];
  /** One threshold per image-reference component (training lab), in its component order. */
  thresholds: Float32Array;
  /**
   * The cell check's Mahalanobis threshold: the graph puts disagreement / its lab threshold on that scale,
   * so one `cell_distance` output and the card's one cell threshold serve both checks.
   */
  cellScale: number;
}

/** Softmax probabilities of head h for row `row` of n×D features. */
function headProbabilities(
  heads: Pick<DisagreementHeads, 'blocks' | 'weights' | 'biases'>,
  h: number,
  features: Float32Array,
  D: number,
  row: number,
): Float64Array {
  const [start, end] = heads.blocks[h];
  const d = end - start;
  const b = heads.biases[h];
  const w = heads.weights[h];
  const k = b.length;
  const logits = new Float64Array(k);
  for (let c = 0; c < k; c++) {
    let s = b[c];
    for (let j = 0; j < d; j++) s += w[c * d + j] * features[row * D + start + j];
    logits[c] = s;
  }
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  let sum = 0;
  for (let c = 0; c < k; c++) sum += logits[c] = Math.exp(logits[c] - max);
  for (let c = 0; c < k; c++) logits[c] /= sum;
  return logits;
}

/**
 * The heads' mean pairwise total-variation distance for one row: the reference implementation, which
 * the model file computes in its graph (familiarity-graph.ts).
 */
export function disagreementOf(
  heads: Pick<DisagreementHeads, 'blocks' | 'weights' | 'biases'>,
  features: Float32Array,
  D: number,
  row: number,
): number {
  const p = heads.blocks.map((_, h) => headProbabilities(heads, h, features, D, row));
  let total = 0;
  let pairs = 0;
  for (let a = 0; a < p.length; a++)
    for (let b = a + 1; b < p.length; b++) {
      let tv = 0;
      for (let c = 0; c < p[a].length; c++) tv += Math.abs(p[a][c] - p[b][c]);
      total += tv / 2;
      pairs++;
    }
  return pairs > 0 ? total / pairs : 0;
}
