/** The worker thread of learnFromReviewedInThread: the whole adaptation, off the server's event loop. */
import { parentPort, workerData } from 'node:worker_threads';
import { postJobOutcome } from '../threads.js';
import { fineTuneFromReviewed } from './reviewed-finetune.js';
import type { LearnedResult, ReviewedThreadOptions } from './reviewed-thread.js';
import { learnFromReviewed } from './reviewed.js';

const port = parentPort;
if (!port) throw new Error('reviewed-worker runs as a worker thread');
const { fineTune, ...options } = workerData as Omit<ReviewedThreadOptions, 'onProgress'>;
const onProgress = (fraction: number, stage: string) => port.postMessage({ progress: fraction, stage });
postJobOutcome<LearnedResult>(
  port,
  fineTune
    ? fineTuneFromReviewed({ ...options, ...fineTune, onProgress })
    : learnFromReviewed({ ...options, onProgress }),
);
