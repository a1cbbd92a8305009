/**
 * Training batches for fine-tuning: network-sized crops held once in shared memory, augmented afresh every
 * epoch. A helper thread can build the next batch while ONNX Runtime (which runs on the calling thread in
 * onnxruntime-node) computes the current one.
 */
import { HematoError } from '../errors.js';
import { augment, type AugmentOptions } from '../imaging/augment.js';
import { createRng } from '../imaging/random.js';
import { writeInput } from '../model/inputs.js';
import { startWorker, WorkerCalls } from '../threads.js';

/** `count` square RGB crops of side `size`, back to back in one SharedArrayBuffer (so threads share them). */
export interface CropStore {
  data: Uint8Array;
  size: number;
  count: number;
}

export function createCropStore(count: number, size: number): CropStore {
  return { data: new Uint8Array(new SharedArrayBuffer(count * size * size * 3)), size, count };
}

/** Crop `i` as an image view (no copy). */
export function cropAt(store: CropStore, i: number): { width: number; height: number; data: Uint8Array } {
  const bytes = store.size * store.size * 3;
  return { width: store.size, height: store.size, data: store.data.subarray(i * bytes, (i + 1) * bytes) };
}

/** A 32-bit mix of integers (murmur3's finaliser per word), so nearby seeds give unrelated streams. */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    let k = Math.imul(p >>> 0, 0xcc9e2d51);
    k = Math.imul((k << 15) | (k >>> 17), 0x1b873593);
    h ^= k;
    h = Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64;
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** The order of `indices` in epoch `epoch`: a function of (seed, epoch) only, so a resumed run repeats it. */
export function epochOrder(indices: readonly number[], seed: number, epoch: number): number[] {
  const rng = createRng(mixSeed(seed, epoch, 0x5eed));
  const out = [...indices];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** Augmentation seed of crop `item` in epoch `epoch`. */
export const augmentSeed = (seed: number, epoch: number, item: number): number => mixSeed(seed, epoch, item);

/**
 * Writes crops `items` as normalised NCHW into `out`: augmented with `seeds[j]` (augment() with `options`
 * over its defaults), or as they are when `seeds` is null.
 */
export function fillBatch(
  store: CropStore,
  items: ArrayLike<number>,
  seeds: ArrayLike<number> | null,
  out: Float32Array,
  options: Partial<AugmentOptions> = {},
): void {
  for (let j = 0; j < items.length; j++) {
    const crop = cropAt(store, items[j]);
    writeInput(seeds ? augment(crop, createRng(seeds[j]), options) : crop, out, j);
  }
}

/** Builds batches, inline or in one helper thread. */
export interface BatchMaker {
  readonly threaded: boolean;
  /** NCHW float32 of `items.length` images; requests are served in order. */
  make(items: number[], seeds: number[] | null): Promise<Float32Array>;
  close(): Promise<void>;
}

export function createBatchMaker(
  store: CropStore,
  options: { workers: 0 | 1; augment?: Partial<AugmentOptions> },
): BatchMaker {
  const augmentOptions = { ...options.augment };
  return options.workers === 1
    ? new ThreadedBatchMaker(store, augmentOptions)
    : new InlineBatchMaker(store, augmentOptions);
}

class InlineBatchMaker implements BatchMaker {
  readonly threaded = false;
  constructor(
    private readonly store: CropStore,
    private readonly augment: Partial<AugmentOptions>,
  ) {}
  async make(items: number[], seeds: number[] | null): Promise<Float32Array> {
    const out = new Float32Array(items.length * 3 * this.store.size * this.store.size);
    fillBatch(this.store, items, seeds, out, this.augment);
    return out;
  }
  async close(): Promise<void> {}
}

export interface BatchRequest {
  items: Int32Array;
  seeds: Uint32Array | null;
}

class ThreadedBatchMaker implements BatchMaker {
  readonly threaded = true;
  private readonly calls: WorkerCalls<BatchRequest, ArrayBuffer>;

  constructor(store: CropStore, augment: Partial<AugmentOptions>) {
    const worker = startWorker(import.meta.url, 'batch-worker', {
      crops: store.data.buffer,
      size: store.size,
      count: store.count,
      augment,
    });
    this.calls = new WorkerCalls(worker, {
      failed: (message) => new HematoError(`Augmentation failed: ${message}`, 'worker_failed', 500),
      died: (reason) => new HematoError(`The augmentation thread failed: ${reason}`, 'worker_failed', 500),
    });
  }

  async make(items: number[], seeds: number[] | null): Promise<Float32Array> {
    const request = { items: Int32Array.from(items), seeds: seeds ? Uint32Array.from(seeds) : null };
    return new Float32Array(await this.calls.call(request));
  }

  async close(): Promise<void> {
    // Prefetched batches still in flight are not awaited by anyone.
    await this.calls.close(new HematoError('The augmentation thread was closed.', 'closed', 500), 'drop');
  }
}
