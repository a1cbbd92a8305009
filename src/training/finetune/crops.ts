/**
 * The crops fine-tuning trains and validates on: every image decoded, located and cropped once, held in one
 * shared store that the epochs augment afresh and the starting head's features are computed from.
 */
import { readFile } from 'node:fs/promises';
import { HematoError } from '../../errors.js';
import { prepareImage, type Preprocessing } from '../../model/inputs.js';
import { DatasetError } from '../../errors.js';
import { createCropStore, type CropStore } from '../batches.js';
import type { Dataset } from '../dataset.js';
import { balanceWeights } from '../weights.js';

/** An image that gave no crop, and why. */
export interface CropFailure {
  index: number;
  path: string;
  reason: string;
}

/**
 * Items held in memory rather than as files (reviewed cells: training/reviewed-finetune.ts): their crops,
 * made by the caller, and each one's cache key for the starting head's features (nothing is read from disk).
 */
export interface MemoryCrops {
  /** Crops of every item (slot i: item i), and the items that gave none. */
  crops: (prep: Preprocessing) => Promise<{ store: CropStore; failed: CropFailure[] }>;
  /** A stable key of item i's crop (its content), in place of a file's sha256. */
  key: (index: number) => string;
}

/** What the stages after cropping work on. */
export interface FineTuneData {
  prep: Preprocessing;
  /** Slot i holds the crop of item i (when usable). */
  store: CropStore;
  failed: CropFailure[];
  /** 1 for the items that gave a crop. */
  usable: Uint8Array;
  /** The usable items of each side of the split. */
  trainItems: number[];
  valItems: number[];
  /** The loss weight of every item (sources and classes balanced). */
  itemWeights: Float32Array;
  /** Items held in memory: each one's feature-cache key (files: their content's sha256). */
  keys?: (index: number) => string;
}

/**
 * Crops every image once (or takes the crops of items held in memory) and keeps the usable items of each
 * side of the split.
 */
export async function prepareData(
  ds: Dataset,
  split: { train: number[]; val: number[] },
  prep: Preprocessing,
  o: { sourceWeights?: Record<string, number>; onPrepare?: (done: number, total: number) => void },
  memory?: MemoryCrops,
): Promise<FineTuneData> {
  const { store, failed } = memory
    ? await memory.crops(prep)
    : await prepareCrops(ds.items, prep, o.onPrepare);
  const usable = new Uint8Array(ds.items.length).fill(1);
  for (const f of failed) usable[f.index] = 0;
  const trainItems = split.train.filter((i) => usable[i]);
  const valItems = split.val.filter((i) => usable[i]);
  if (trainItems.length === 0 || valItems.length === 0)
    throw new DatasetError('No usable images on one side of the split.');
  const itemWeights = balanceWeights(ds.items, { sourceWeights: o.sourceWeights });
  return { prep, store, failed, usable, trainItems, valItems, itemWeights, keys: memory?.key };
}

/** Decodes, locates and crops every image once (the serving path, primary cell only); slot i holds items[i]. */
export async function prepareCrops(
  items: readonly { path: string }[],
  prep: Preprocessing,
  onProgress?: (done: number, total: number) => void,
): Promise<{ store: CropStore; failed: CropFailure[] }> {
  const size = prep.inputSize;
  // Slot i holds item i: a failed item leaves its slot unused, which costs less than an index map.
  const store = createCropStore(items.length, size);
  const failed: CropFailure[] = [];
  const bytes = size * size * 3;
  const chunk = 8; // sharp decodes in its own threads; a few in flight keep it busy
  for (let start = 0; start < items.length; start += chunk) {
    const end = Math.min(items.length, start + chunk);
    await Promise.all(
      Array.from({ length: end - start }, async (_, j) => {
        const i = start + j;
        try {
          const prepared = await prepareImage(await readFile(items[i].path), prep, { primaryOnly: true });
          if (prepared.regions.length === 0) {
            failed.push({ index: i, path: items[i].path, reason: 'no white cell found' });
            return;
          }
          store.data.set(prepared.regions[0].pixels.data, i * bytes);
        } catch (e) {
          failed.push({
            index: i,
            path: items[i].path,
            reason: e instanceof HematoError ? e.message : String(e),
          });
        }
      }),
    );
    onProgress?.(end, items.length);
  }
  failed.sort((a, b) => a.index - b.index);
  return { store, failed };
}
