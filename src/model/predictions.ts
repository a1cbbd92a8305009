/**
 * From network outputs to predictions: pure (no Node, no ONNX runtime), so the server and the browser draw
 * the same decisions from the same numbers.
 */
import { argmax } from './softmax.js';
import {
  orderReasons,
  type CellPrediction,
  type ImagePrediction,
  type ModelCard,
  type Prediction,
  type ReviewReason,
} from './types.js';

/** What predictionOf reads of a run: calibrated probabilities (n×k) and, with a reference, distances. */
export interface RowsOutput {
  probabilities: Float32Array;
  /** Results below this confidence are flagged for review (calibrated for the run's views). */
  reviewThreshold: number;
  /** Raw distances per row (the card's familiarity thresholds divide them). */
  distances?: { cell: Float32Array; image: Float32Array };
}

const round3 = (v: number) => Math.round(v * 1000) / 1000;

/** Row `i` of a run's output as a Prediction, with its review reasons. */
export function predictionOf(card: ModelCard, out: RowsOutput, i: number): Prediction {
  const classes = card.classes;
  const k = classes.length;
  const row = out.probabilities.subarray(i * k, (i + 1) * k);
  const best = argmax(row, 0, k);
  const probs: Record<string, number> = {};
  classes.forEach((c, j) => (probs[c] = row[j]));
  const reasons = new Set<ReviewReason>();
  if (row[best] < out.reviewThreshold) reasons.add('low_confidence');
  const f = card.familiarity;
  let distance: Prediction['distance'];
  if (out.distances && f) {
    distance = {
      cell: round3(out.distances.cell[i] / f.cell.threshold),
      image: round3(out.distances.image[i] / f.image.threshold),
    };
    if (distance.cell > 1) reasons.add('unfamiliar_cell');
    if (distance.image > 1) reasons.add('unfamiliar_image');
  }
  const reviewReasons = orderReasons(reasons);
  return {
    label: classes[best],
    confidence: row[best],
    probabilities: probs,
    needsReview: reviewReasons.length > 0,
    reviewReasons,
    ...(distance ? { distance } : {}),
  };
}

/**
 * One image's answer from its cells: the locator's most likely cell (`primary`; cells come best first)
 * answers, and the image needs review when any of its cells does, so a flagged second cell is never hidden
 * behind an unflagged first. No cell: no guess, `no_cell`. `damage` says why the image looks damaged.
 */
export function imagePrediction(
  primary: Prediction | null,
  cells: CellPrediction[],
  damage: string | undefined,
): ImagePrediction {
  const damaged = damage !== undefined;
  if (primary === null) {
    return {
      label: null,
      confidence: 0,
      probabilities: {},
      needsReview: true,
      reviewReasons: damaged ? ['damaged_image', 'no_cell'] : ['no_cell'],
      cells: [],
      message: [damage, 'No white blood cell was found in this image.'].filter(Boolean).join(' '),
    };
  }
  const reviewReasons = orderReasons([
    ...primary.reviewReasons,
    ...cells.flatMap((c) => c.reviewReasons),
    ...(damaged ? ['damaged_image' as const] : []),
  ]);
  return {
    ...primary,
    needsReview: reviewReasons.length > 0,
    reviewReasons,
    ...(damaged ? { message: damage } : {}),
    cells,
  };
}
