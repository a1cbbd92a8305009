// Helper thread of ThreadedBatchMaker (batches.ts): augments and normalises batches of the shared crops.
import { parentPort, workerData } from 'node:worker_threads';
import { fillBatch, type BatchReply, type BatchRequest, type CropStore } from './batches.js';

const { crops, size, count } = workerData as { crops: SharedArrayBuffer; size: number; count: number };
const store: CropStore = { data: new Uint8Array(crops), size, count };

parentPort!.on('message', (m: BatchRequest) => {
  let reply: BatchReply;
  let transfer: ArrayBuffer[] = [];
  try {
    const out = new Float32Array(m.items.length * 3 * size * size);
    fillBatch(store, m.items, m.seeds, out);
    reply = { id: m.id, buffer: out.buffer };
    transfer = [out.buffer];
  } catch (e) {
    reply = { id: m.id, error: e instanceof Error ? e.message : String(e) };
  }
  parentPort!.postMessage(reply, transfer);
});
