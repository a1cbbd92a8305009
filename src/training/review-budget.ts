/**
 * The review budget: a known lab's reviewers should not be flooded. The low-confidence threshold chosen for
 * accuracy (held-out.ts) is lowered, when needed, until no training lab has more than `budget` of its
 * validation images flagged for any reason (familiarity checks included). The rest of that lab's errors
 * then go unflagged: on a lab where the model is weak, the budget, not the accuracy target, sets the line.
 */
export const REVIEW_BUDGET = 0.1;

export interface BudgetRow {
  /** Top calibrated probability. */
  confidence: number;
  /** Flagged already by another reason (unfamiliar cell or image). */
  flagged: boolean;
  source: number;
}

/**
 * The highest threshold ≤ `current` at which every source's review rate stays within the budget, and each
 * source's review rate at the threshold returned.
 */
export function capReviewThreshold(
  rows: BudgetRow[],
  sources: string[],
  current: number,
  budget = REVIEW_BUDGET,
): { threshold: number; reviewRate: Record<string, number> } {
  let threshold = current;
  sources.forEach((_, s) => {
    const mine = rows.filter((r) => r.source === s);
    if (mine.length === 0) return;
    const allowed = Math.floor(budget * mine.length) - mine.filter((r) => r.flagged).length;
    // Confidences of the rows not flagged otherwise, lowest first: the first `allowed` may be flagged.
    const open = mine
      .filter((r) => !r.flagged)
      .map((r) => r.confidence)
      .sort((a, b) => a - b);
    // Flagging is `confidence < threshold`: at open[allowed] exactly `allowed` rows lie below (ties aside).
    const cap = allowed <= 0 ? 0 : allowed >= open.length ? 1 : open[allowed];
    threshold = Math.min(threshold, cap);
  });
  const reviewRate = Object.fromEntries(
    sources.map((name, s) => {
      const mine = rows.filter((r) => r.source === s);
      const flagged = mine.filter((r) => r.flagged || r.confidence < threshold).length;
      return [name, mine.length ? flagged / mine.length : 0];
    }),
  );
  return { threshold, reviewRate };
}
