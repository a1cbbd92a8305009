import { DatasetError } from '../errors.js';

export interface WeightItem {
  labelIndex: number;
  source: number;
  /** Used to match `sourceWeights` keys; without it a source is known by its index ("0", "1", ...). */
  sourceName?: string;
}

/**
 * Per-sample loss weights that undo class and source imbalance:
 *
 *   w_i = N · W_s / (C_s · n_{s,k})     for item i of class k from source s
 *
 * N = number of items, n_{s,k} = items of class k in source s, C_s = classes present in source s,
 * W_s = the source's weight normalised over the sources present (Σ W_s = 1; default all equal).
 * So every (source, class) cell of a source weighs the same, W_s / C_s of the total; each source
 * weighs W_s in total; and the weights average 1, keeping the loss scale (and the l2 that suits it)
 * independent of the data's size.
 */
export function balanceWeights(
  items: WeightItem[],
  options: { sourceWeights?: Record<string, number> } = {},
): Float32Array {
  const n = items.length;
  const out = new Float32Array(n);
  if (n === 0) return out;
  const keyOf = (it: WeightItem) => it.sourceName ?? String(it.source);

  const cellCount = new Map<string, number>();
  const classesPerSource = new Map<string, Set<number>>();
  for (const it of items) {
    const s = keyOf(it);
    const cell = `${s}\u0000${it.labelIndex}`;
    cellCount.set(cell, (cellCount.get(cell) ?? 0) + 1);
    let set = classesPerSource.get(s);
    if (!set) classesPerSource.set(s, (set = new Set()));
    set.add(it.labelIndex);
  }

  const given = options.sourceWeights ?? {};
  const unknown = Object.keys(given).filter((k) => !classesPerSource.has(k));
  if (unknown.length > 0) {
    throw new DatasetError(
      `Source weight for unknown source ${unknown.join(', ')}; the sources are: ${[...classesPerSource.keys()].join(', ')}.`,
    );
  }
  let total = 0;
  const raw = new Map<string, number>();
  for (const s of classesPerSource.keys()) {
    const w = given[s] ?? 1;
    if (!(Number.isFinite(w) && w >= 0))
      throw new DatasetError(`Source weight for ${s} must be a number ≥ 0.`);
    raw.set(s, w);
    total += w;
  }
  if (total <= 0) throw new DatasetError('At least one source needs a weight above 0.');

  items.forEach((it, i) => {
    const s = keyOf(it);
    const ws = raw.get(s)! / total;
    out[i] = (n * ws) / (classesPerSource.get(s)!.size * cellCount.get(`${s}\u0000${it.labelIndex}`)!);
  });
  return out;
}
