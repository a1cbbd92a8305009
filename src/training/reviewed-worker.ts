/** The worker thread of learnFromReviewedInThread: the whole adaptation, off the server's event loop. */
import { parentPort, workerData } from 'node:worker_threads';
import { HematoError } from '../errors.js';
import { learnFromReviewed, type ReviewedOptions } from './reviewed.js';

const port = parentPort;
if (!port) throw new Error('reviewed-worker runs as a worker thread');
const options = workerData as Omit<ReviewedOptions, 'onProgress'>;
learnFromReviewed({
  ...options,
  onProgress: (fraction, stage) => port.postMessage({ progress: fraction, stage }),
}).then(
  (result) => port.postMessage({ result }),
  (err: unknown) =>
    port.postMessage({
      error: err instanceof Error ? err.message : String(err),
      code: err instanceof HematoError ? err.code : undefined,
    }),
);
