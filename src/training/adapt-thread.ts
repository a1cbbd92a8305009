/**
 * Runs adaptModel (unlabelled alignment) in a worker thread: the server's alignment job keeps its event loop
 * free (measured in the main thread: pauses of up to 2.7 s while it ran). Stopping terminates the thread,
 * with whatever it was computing.
 */
import { HematoError } from '../errors.js';
import { startWorker } from '../threads.js';
import type { AdaptOptions, AdaptResult } from './adapt.js';

type Message =
  | { stage: string }
  | { done: number; total: number }
  | { result: AdaptResult }
  | { error: string; code?: string };

export function adaptModelInThread(o: AdaptOptions, signal?: AbortSignal): Promise<AdaptResult> {
  const { onStage, onProgress, ...data } = o;
  const worker = startWorker(import.meta.url, 'adapt-worker', data);
  return new Promise<AdaptResult>((resolve, reject) => {
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
      if ('stage' in m) onStage?.(m.stage);
      else if ('done' in m) onProgress?.(m.done, m.total);
      else if ('result' in m) settle(() => resolve(m.result));
      else settle(() => reject(new HematoError(m.error, m.code ?? 'alignment_failed')));
    });
    worker.on('error', (e) => settle(() => reject(e)));
    worker.on('exit', (code) =>
      settle(() =>
        reject(new HematoError(`The alignment's thread stopped (exit code ${code}).`, 'worker_failed', 500)),
      ),
    );
  });
}
