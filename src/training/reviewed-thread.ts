/**
 * Runs learning from reviewed cells in a worker thread, by the recipe chosen for them (reviewed-choice.ts):
 * learnFromReviewed (a new head) or, with `fineTune`, fineTuneFromReviewed. The caller's event loop (a
 * server's) stays free meanwhile; stopping terminates the thread, with whatever it was computing.
 */
import { HematoError } from '../errors.js';
import { startWorker } from '../threads.js';
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

type Message =
  { progress: number; stage: string } | { result: LearnedResult } | { error: string; code?: string };

export function learnFromReviewedInThread(
  o: ReviewedThreadOptions,
  signal?: AbortSignal,
): Promise<LearnedResult> {
  const { onProgress, ...data } = o;
  const worker = startWorker(import.meta.url, 'reviewed-worker', data);
  return new Promise<LearnedResult>((resolve, reject) => {
    let settled = false;
    const settle = (f: () => void) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', stop);
      void worker.terminate();
      f();
    };
    const stop = () => settle(() => reject(signal?.reason ?? new Error('Stopped.')));
    if (signal?.aborted) return stop();
    signal?.addEventListener('abort', stop, { once: true });
    worker.on('message', (m: Message) => {
      if ('progress' in m) onProgress?.(m.progress, m.stage);
      else if ('result' in m) settle(() => resolve(m.result));
      else settle(() => reject(new HematoError(m.error, m.code ?? 'adaptation_failed')));
    });
    worker.on('error', (e) => settle(() => reject(e)));
    worker.on('exit', (code) =>
      settle(() =>
        reject(new HematoError(`The adaptation's thread stopped (exit code ${code}).`, 'worker_failed', 500)),
      ),
    );
  });
}
