/** The worker thread of adaptModelInThread: the whole alignment, off the server's event loop. */
import { parentPort, workerData } from 'node:worker_threads';
import { HematoError } from '../errors.js';
import { adaptModel, type AdaptOptions } from './adapt.js';

const port = parentPort;
if (!port) throw new Error('adapt-worker runs as a worker thread');
const options = workerData as Omit<AdaptOptions, 'onStage' | 'onProgress'>;
adaptModel({
  ...options,
  onStage: (stage) => port.postMessage({ stage }),
  onProgress: (done, total) => port.postMessage({ done, total }),
}).then(
  (result) => port.postMessage({ result }),
  (err: unknown) =>
    port.postMessage({
      error: err instanceof Error ? err.message : String(err),
      code: err instanceof HematoError ? err.code : undefined,
    }),
);
