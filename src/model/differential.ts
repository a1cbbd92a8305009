import type { ImagePrediction } from './types.js';

/**
 * Classes a smear holds that are not white cells. A differential counts white cells only; a lab reports
 * nucleated red cells (erythroblasts) per 100 white cells and platelets on their own, so both are counted
 * beside the differential, never in its percentages.
 */
export const NOT_WHITE_CELLS: readonly string[] = ['erythroblast', 'platelet'];

export interface Differential {
  /** Cells of every class the model knows (zeros included), white or not. */
  counts: Record<string, number>;
  /** Share of the white cells, per white-cell class; they sum to 100 unless `total` is 0. */
  percentages: Record<string, number>;
  /** White cells counted. */
  total: number;
  /** Non-white classes the model knows, per 100 white cells (erythroblasts as labs report them). */
  per100White: Record<string, number>;
}

/**
 * Counts over every cell of every image; an image analysed without cells (whole-image model) counts its label
 * once, one with no label (no white cell found) not at all.
 */
export function differential(
  classes: readonly string[],
  predictions: readonly ImagePrediction[],
): Differential {
  const counts: Record<string, number> = Object.fromEntries(classes.map((c) => [c, 0]));
  for (const p of predictions) {
    const labels = p.cells.length > 0 ? p.cells.map((c) => c.label) : p.label !== null ? [p.label] : [];
    for (const l of labels) counts[l] = (counts[l] ?? 0) + 1;
  }
  const white = Object.keys(counts).filter((c) => !NOT_WHITE_CELLS.includes(c));
  const total = white.reduce((a, c) => a + counts[c], 0);
  const percentages = Object.fromEntries(white.map((c) => [c, total === 0 ? 0 : (100 * counts[c]) / total]));
  const per100White = Object.fromEntries(
    Object.keys(counts)
      .filter((c) => NOT_WHITE_CELLS.includes(c))
      .map((c) => [c, total === 0 ? 0 : (100 * counts[c]) / total]),
  );
  return { counts, percentages, total, per100White };
}
