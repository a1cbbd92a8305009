import { REVIEW_REASONS, type ReviewReason } from '../model/types.js';

/** One scored image: was the answer right, was it flagged, and why. */
export interface ReviewedAnswer {
  correct: boolean;
  needsReview: boolean;
  reviewReasons: ReviewReason[];
  /** Top probability (0 when there was no answer). */
  confidence: number;
}

export interface ReviewStats {
  n: number;
  /** Share flagged for review. */
  rate: number;
  /** Accuracy among the answers not flagged (NaN when every answer is flagged). */
  acceptedAccuracy: number;
  /** Share of all images whose answer is wrong and not flagged: the errors a person would not see. */
  silentErrorRate: number;
  /** Share of all images flagged for each reason (an image may have several). */
  byReason: Record<ReviewReason, number>;
}

export function reviewStats(answers: ReviewedAnswer[]): ReviewStats {
  const n = answers.length;
  const byReason = Object.fromEntries(REVIEW_REASONS.map((r) => [r, 0])) as Record<ReviewReason, number>;
  let flagged = 0;
  let acceptedRight = 0;
  let silent = 0;
  for (const a of answers) {
    for (const r of a.reviewReasons) byReason[r]++;
    if (a.needsReview) flagged++;
    else if (a.correct) acceptedRight++;
    else silent++;
  }
  for (const r of REVIEW_REASONS) byReason[r] = n ? byReason[r] / n : 0;
  const accepted = n - flagged;
  return {
    n,
    rate: n ? flagged / n : 0,
    acceptedAccuracy: accepted ? acceptedRight / accepted : NaN,
    silentErrorRate: n ? silent / n : 0,
    byReason,
  };
}

/**
 * Accuracy among accepted answers against review rate, as the confidence threshold moves and every other
 * reason stays: what a lab trades by reviewing more. Points from reviewing only the other reasons' images
 * up to reviewing everything; `steps` thresholds evenly spaced in confidence.
 */
export function reviewCurve(
  answers: ReviewedAnswer[],
  steps = 50,
): { threshold: number; reviewRate: number; acceptedAccuracy: number }[] {
  const n = answers.length;
  const out: { threshold: number; reviewRate: number; acceptedAccuracy: number }[] = [];
  if (n === 0) return out;
  for (let s = 0; s <= steps; s++) {
    const threshold = s / steps;
    let flagged = 0;
    let right = 0;
    for (const a of answers) {
      const other = a.reviewReasons.some((r) => r !== 'low_confidence');
      if (other || a.confidence < threshold) flagged++;
      else if (a.correct) right++;
    }
    if (flagged < n)
      out.push({ threshold, reviewRate: flagged / n, acceptedAccuracy: right / (n - flagged) });
  }
  return out;
}
