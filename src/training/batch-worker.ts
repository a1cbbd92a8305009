// Helper thread of ThreadedBatchMaker (batches.ts): augments and normalises batches of the shared crops.
import { parentPort, workerData } from 'node:worker_threads';
import type { AugmentOptions } from '../imaging/augment.js';
import { answerCalls } from '../threads.js';
import { fillBatch, type BatchRequest, type CropStore } from './batches.js';

const { crops, size, count, augment } = workerData as {
  crops: SharedArrayBuffer;
  size: number;
  count: number;
  augment: Partial<AugmentOptions>;
};
const store: CropStore = { data: new Uint8Array(crops), size, count };

answerCalls<BatchRequest, ArrayBuffer>(
  parentPort!,
  (m) => {
    const out = new Float32Array(m.items.length * 3 * size * size);
    fillBatch(store, m.items, m.seeds, out, augment);
    return out.buffer;
  },
  (buffer) => [buffer],
);
