/** The worker thread of adaptModelInThread: the whole alignment, off the server's event loop. */
import { parentPort, workerData } from 'node:worker_threads';
import { postJobOutcome } from '../threads.js';
import { adaptModel, type AdaptOptions } from './adapt.js';

const port = parentPort;
if (!port) throw new Error('adapt-worker runs as a worker thread');
const options = workerData as Omit<AdaptOptions, 'onStage' | 'onProgress'>;
postJobOutcome(
  port,
  adaptModel({
    ...options,
    onStage: (stage) => port.postMessage({ stage }),
    onProgress: (done, total) => port.postMessage({ done, total }),
  }),
);
