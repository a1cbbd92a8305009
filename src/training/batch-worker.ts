// Helper thread of ThreadedBatchMaker (batches.ts): augments and normalises batches of the shared crops.
import { parentPort, workerData } from 'node:worker_threads';
import type { AugmentOptions } from '../imaging/augment.js';
import { fillBatch, type BatchReply, type BatchRequest, type CropStore } from './batches.js';

const { crops, size, count, augment } = workerData as {
  crops: SharedArrayBuffer;
  size: number;
  count: number;
  augment: Partial<AugmentOptions>;
};
const store: CropStore = { data: new Uint8Array(crops), size, count };

parentPort!.on('message', (m: BatchRequest) => {
  let reply: BatchReply;
  let transfer: ArrayBuffer[] = [];
  try {
    const out = new Float32Array(m.items.length * 3 * size * size);
    fillBatch(store, m.items, m.seeds, out, augment);
    reply = { id: m.id, buffer: out.buffer };
    transfer = [out.buffer];
  } catch (e) {
    reply = { id: m.id, error: e instanceof Error ? e.message : String(e) };
  }
  parentPort!.postMessage(reply, transfer);
});
