// A thread of a PreparePool (prepare-pool.ts): decodes images and locates their cells on request, so a
// server's event loop never runs those pixel loops itself.
import { parentPort, workerData } from 'node:worker_threads';
import { HematoError, InvalidImageError } from '../errors.js';
import { answerCalls } from '../threads.js';
import { prepareImage } from './inputs.js';
import type { PrepareReply, PrepareRequest, PrepareWorkerData } from './prepare-pool.js';
import { lowerThreadPriority } from '../thread-priority.js';

// The restricted thread (bombs, bulk requests) yields the cores to the ordinary ones; before its first call.
if ((workerData as PrepareWorkerData).lowPriority) await lowerThreadPriority();

answerCalls<PrepareRequest, PrepareReply>(
  parentPort!,
  async ({ input, prep, options }): Promise<PrepareReply> => {
    try {
      return { ok: true, prepared: await prepareImage(Buffer.from(input), prep, options) };
    } catch (err) {
      if (!(err instanceof HematoError)) throw err;
      return {
        ok: false,
        message: err.message,
        code: err.code,
        status: err.status,
        image: err instanceof InvalidImageError,
      };
    }
  },
  // Copied back, not transferred: sharp's output buffers may be external memory, which cannot be moved, and
  // a cell's 224² pixels are small.
);
