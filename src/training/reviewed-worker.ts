/** The worker thread of learnFromReviewedInThread: the whole adaptation, off the server's event loop. */
import { parentPort, workerData } from 'node:worker_threads';
import { HematoError } from '../errors.js';
import { fineTuneFromReviewed } from './reviewed-finetune.js';
import type { ReviewedThreadOptions } from './reviewed-thread.js';
import { learnFromReviewed } from './reviewed.js';

const port = parentPort;
if (!port) throw new Error('reviewed-worker runs as a worker thread');
const { fineTune, ...options } = workerData as Omit<ReviewedThreadOptions, 'onProgress'>;
const onProgress = (fraction: number, stage: string) => port.postMessage({ progress: fraction, stage });
(fineTune
  ? fineTuneFromReviewed({ ...options, ...fineTune, onProgress })
  : learnFromReviewed({ ...options, onProgress })
).then(
  (result) => port.postMessage({ result }),
  (err: unknown) =>
    port.postMessage({
      error: err instanceof Error ? err.message : String(err),
      code: err instanceof HematoError ? err.code : undefined,
    }),
);
