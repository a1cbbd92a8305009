/**
 * Runs adaptModel (unlabelled alignment) in a worker thread: the server's alignment job keeps its event loop
 * free (measured in the main thread: pauses of up to 2.7 s while it ran). Stopping terminates the thread,
 * with whatever it was computing.
 */
import { runJobThread } from '../threads.js';
import type { AdaptOptions, AdaptResult } from './adapt.js';

export function adaptModelInThread(o: AdaptOptions, signal?: AbortSignal): Promise<AdaptResult> {
  const { onStage, onProgress, ...data } = o;
  return runJobThread<{ stage: string } | { done: number; total: number }, AdaptResult>(
    import.meta.url,
    'adapt-worker',
    data,
    {
      signal,
      failCode: 'alignment_failed',
      what: 'alignment',
      onProgress: (m) => ('stage' in m ? onStage?.(m.stage) : onProgress?.(m.done, m.total)),
    },
  );
}
