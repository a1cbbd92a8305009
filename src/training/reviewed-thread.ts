/** Runs learnFromReviewed in a worker thread: the caller's event loop (a server's) stays free meanwhile. */
import { HematoError } from '../errors.js';
import { startWorker } from '../threads.js';
import type { ReviewedOptions, ReviewedResult } from './reviewed.js';

type Message =
  { progress: number; stage: string } | { result: ReviewedResult } | { error: string; code?: string };

export function learnFromReviewedInThread(o: ReviewedOptions, signal?: AbortSignal): Promise<ReviewedResult> {
  const { onProgress, ...data } = o;
  const worker = startWorker(import.meta.url, 'reviewed-worker', data);
  return new Promise<ReviewedResult>((resolve, reject) => {
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
