/**
 * Runs learning from reviewed cells in a worker thread, by the recipe chosen for them (reviewed-choice.ts):
 * learnFromReviewed (a new head) or, with `fineTune`, fineTuneFromReviewed. The caller's event loop (a
 * server's) stays free meanwhile; stopping terminates the thread, with whatever it was computing.
 */
import { runJobThread } from '../threads.js';
import type { ReviewedFineTuneOptions, ReviewedFineTuneResult } from './reviewed-finetune.js';
import type { ReviewedOptions, ReviewedResult } from './reviewed.js';

export interface ReviewedThreadOptions extends ReviewedOptions {
  /**
   * Fine-tune from the model instead of training a new head: the MobileNetV2 TFLite file it was built on, and
   * any overrides of the recipe (REVIEWED_FINE_TUNE).
   */
  fineTune?: FineTuneRecipe;
}

export type FineTuneRecipe = Pick<ReviewedFineTuneOptions, 'tflite'> & FineTuneOverrides;

/** What a caller may change of the fine-tuning recipe (tests run a short one). */
export type FineTuneOverrides = Partial<
  Pick<ReviewedFineTuneOptions, 'epochs' | 'trainFromBlock' | 'batchSize' | 'lr' | 'headLr'>
>;

export type LearnedResult = ReviewedResult | ReviewedFineTuneResult;

export function learnFromReviewedInThread(
  o: ReviewedThreadOptions,
  signal?: AbortSignal,
): Promise<LearnedResult> {
  const { onProgress, ...data } = o;
  return runJobThread<{ progress: number; stage: string }, LearnedResult>(
    import.meta.url,
    'reviewed-worker',
    data,
    {
      signal,
      failCode: 'adaptation_failed',
      what: 'adaptation',
      onProgress: (m) => onProgress?.(m.progress, m.stage),
    },
  );
}
