/**
 * Which recipe learns from the reviewed cells: a new head on the active model's frozen backbone
 * (training/reviewed.ts) or fine-tuning the whole network from the active model (training/reviewed-finetune.ts).
 * The one place this is decided; the job records the choice and its reason.
 */

export type ReviewedRecipeKind = 'head' | 'fine-tune';

/**
 * Fine-tune only when every class has at least this many reviewed cells. Why 200: at 20 cells per class the
 * frozen head was as accurate as fine-tuning, from ImageNet or from the other lab's model, within the spread
 * between draws (BENCHMARKS, "Adapting to a lab from a few of its cells"), and it trains in seconds where
 * fine-tuning takes minutes; fine-tuning moves ~2.2 M weights and the bundled model's run used ~1,200 crops a
 * class, so it can only pay off with a few hundred a class. 200 is a judgement, not a measured crossover:
 * ADAPTATION_FINE_TUNE_MIN_CELLS (server) changes it.
 */
export const FINE_TUNE_MIN_CELLS_PER_CLASS = 200;

export interface RecipeChoice {
  kind: ReviewedRecipeKind;
  /** Why, in words, for the job's result and the admin page. */
  reason: string;
}

export interface ChoiceSettings {
  /** Fewest reviewed cells of every class for fine-tuning (default FINE_TUNE_MIN_CELLS_PER_CLASS). */
  minCellsPerClass?: number;
  /** The MobileNetV2 TFLite weights fine-tuning builds its network from; null: none, so the head. */
  tflite: string | null;
}

/** The recipe for these reviewed cells (labels of other classes than the model's are not counted). */
export function chooseReviewedRecipe(
  classes: string[],
  cells: readonly { label: string }[],
  o: ChoiceSettings,
): RecipeChoice {
  const min = o.minCellsPerClass ?? FINE_TUNE_MIN_CELLS_PER_CLASS;
  const counts = new Map(classes.map((c) => [c, 0]));
  for (const c of cells) if (counts.has(c.label)) counts.set(c.label, counts.get(c.label)! + 1);
  const [fewestClass, fewest] = [...counts].reduce((a, b) => (b[1] < a[1] ? b : a));
  if (fewest < min)
    return {
      kind: 'head',
      reason:
        `A new head on the frozen backbone: ${fewestClass} has ${fewest} reviewed cells, fewer than the ` +
        `${min} of every class that fine-tuning needs.`,
    };
  if (!o.tflite)
    return {
      kind: 'head',
      reason:
        `A new head on the frozen backbone: every class has at least ${min} reviewed cells, but fine-tuning ` +
        'needs the MobileNetV2 TFLite weights, and none are configured (BACKBONE_TFLITE).',
    };
  return {
    kind: 'fine-tune',
    reason: `Fine-tuned from the active model: every class has at least ${min} reviewed cells (fewest: ${fewestClass}, ${fewest}).`,
  };
}
