/**
 * The training data's per-channel activation statistics, which travel with a model (a side file beside
 * model.onnx, bound to the card by its sha256) so that a lab without the training data can align the model
 * to its own images (`hematovision adapt`). Also the crops and batches both sides measure them on.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { DatasetError, HematoError, ModelError } from '../errors.js';
import { createRng, shuffled } from '../imaging/random.js';
import { ChannelStatsRunner, type LayerStats } from '../model/alignment.js';
import { prepareImage, writeInput, type Preprocessing } from '../model/inputs.js';
import type { ActivationStatsRecord, ModelCard } from '../model/types.js';
import { writeAtomic } from './files.js';

export const STATS_FORMAT = 'hematovision-activation-stats';

/** Network-sized crops of images (one per image: its most likely cell, or the whole image). */
export interface Crops {
  size: number;
  /** RGB size×size per usable image */
  pixels: Uint8Array[];
  /** Path of each crop's image. */
  paths: string[];
  /** Images that gave no crop: unreadable, or no white cell found. */
  failed: { path: string; reason: string }[];
}

/** Decodes and crops images as serving does (model/inputs.ts), a few at a time. */
export async function loadCrops(
  paths: string[],
  prep: Preprocessing,
  onProgress?: (done: number, total: number) => void,
): Promise<Crops> {
  const out: Crops = { size: prep.inputSize, pixels: [], paths: [], failed: [] };
  const chunk = 16;
  for (let start = 0; start < paths.length; start += chunk) {
    const part = paths.slice(start, start + chunk);
    const got = await Promise.all(
      part.map(async (path) => {
        try {
          const prepared = await prepareImage(await readFile(path), prep, { primaryOnly: true });
          return prepared.regions.length > 0
            ? { path, pixels: prepared.regions[0].pixels.data, reason: null }
            : { path, pixels: null, reason: 'no white cell found' };
        } catch (e) {
          return { path, pixels: null, reason: e instanceof HematoError ? e.message : String(e) };
        }
      }),
    );
    for (const g of got) {
      if (g.pixels) {
        out.pixels.push(g.pixels);
        out.paths.push(g.path);
      } else out.failed.push({ path: g.path, reason: g.reason ?? 'unreadable' });
    }
    onProgress?.(Math.min(paths.length, start + chunk), paths.length);
  }
  return out;
}

/** The crops at `indices` as one NCHW float batch, (p − 128)/128. */
export function cropBatch(crops: Crops, indices: number[]): Float32Array {
  const s = crops.size;
  const out = new Float32Array(indices.length * 3 * s * s);
  indices.forEach((i, slot) => writeInput({ width: s, height: s, data: crops.pixels[i] }, out, slot));
  return out;
}

/**
 * Runs `runner` over the crops at `indices` in batches; returns their features (rows in `indices` order).
 * The runner keeps their channel statistics.
 */
export async function runCrops(
  runner: ChannelStatsRunner,
  crops: Crops,
  indices: number[],
  batchSize = 16,
  onProgress?: (done: number, total: number) => void,
): Promise<Float32Array[]> {
  const feats: Float32Array[] = [];
  for (let start = 0; start < indices.length; start += batchSize) {
    const part = indices.slice(start, start + batchSize);
    feats.push(await runner.run(cropBatch(crops, part), part.length, [3, crops.size, crops.size]));
    onProgress?.(Math.min(indices.length, start + batchSize), indices.length);
  }
  return feats;
}

/** `count` indices spread evenly over [0, n) (all of them when n ≤ count). */
export function evenSample(n: number, count: number): number[] {
  if (n <= count) return Array.from({ length: n }, (_, i) => i);
  return Array.from({ length: count }, (_, i) => Math.floor(((i + 0.5) * n) / count));
}

interface StatsFile {
  format: typeof STATS_FORMAT;
  version: 1;
  images: number;
  layers: { name: string; mean: number[]; variance: number[] }[];
}

/** The side file of a model: `<name>.stats.json` beside `<name>.onnx`. */
export function statsPathFor(modelPath: string): string {
  return join(dirname(modelPath), `${basename(modelPath).replace(/\.onnx$/i, '')}.stats.json`);
}

/** Serialises statistics (7 significant digits is far finer than their sampling error). */
export function encodeStats(stats: LayerStats, images: number): Buffer {
  const round = (v: number) => Number(v.toPrecision(7));
  const file: StatsFile = {
    format: STATS_FORMAT,
    version: 1,
    images,
    layers: [...stats].map(([name, s]) => ({
      name,
      mean: Array.from(s.mean, round),
      variance: Array.from(s.variance, round),
    })),
  };
  return Buffer.from(JSON.stringify(file) + '\n');
}

/**
 * Writes the statistics beside the model and returns the card's record of them (the card must then be
 * written with it: the sha256 binds the two).
 */
export function writeStats(
  modelPath: string,
  stats: LayerStats,
  o: { images: number; bySource: Record<string, number>; description: string },
): ActivationStatsRecord {
  const path = statsPathFor(modelPath);
  const bytes = encodeStats(stats, o.images);
  writeAtomic(path, bytes);
  return {
    file: basename(path),
    sha256: createHash('sha256').update(bytes).digest('hex'),
    images: o.images,
    bySource: o.bySource,
    description: o.description,
    computedAt: new Date().toISOString(),
  };
}

/** The training statistics a model's card points to, checked against the card's sha256. */
export function readStats(modelPath: string, card: ModelCard): LayerStats {
  const rec = card.activationStats;
  if (!rec)
    throw new ModelError(
      'The model carries no training statistics to align to. Add them with ' +
        "'hematovision familiarize --model <dir> --data <the folders it was trained on>', or pass " +
        '--reference with those folders.',
      'no_training_stats',
    );
  const path = join(dirname(modelPath), rec.file);
  if (!existsSync(path))
    throw new ModelError(
      `The model's training statistics ${rec.file} are missing beside it.`,
      'no_training_stats',
    );
  const bytes = readFileSync(path);
  if (createHash('sha256').update(bytes).digest('hex') !== rec.sha256)
    throw new ModelError(`${rec.file} does not match the model card (sha256).`, 'bad_stats');
  const file = JSON.parse(bytes.toString('utf8')) as StatsFile;
  if (file.format !== STATS_FORMAT || file.version !== 1)
    throw new ModelError(`${rec.file} is not a statistics file this version reads.`, 'bad_stats');
  return new Map(
    file.layers.map((l) => [
      l.name,
      { mean: Float64Array.from(l.mean), variance: Float64Array.from(l.variance) },
    ]),
  );
}

/**
 * The training images' statistics of a model, measured on up to `max` of them drawn evenly across sources
 * (seeded), one unaugmented view each: the target `hematovision adapt` aligns a lab's images to.
 */
export async function measureTrainingStats(
  model: Uint8Array,
  items: readonly { path: string; sourceName: string }[],
  prep: Preprocessing,
  o: { max?: number; seed: number; onProgress?: (done: number, total: number) => void },
): Promise<{ stats: LayerStats; images: number; bySource: Record<string, number> }> {
  const bySourceItems = new Map<string, string[]>();
  for (const it of items) {
    const list = bySourceItems.get(it.sourceName) ?? [];
    list.push(it.path);
    bySourceItems.set(it.sourceName, list);
  }
  const per = Math.max(1, Math.floor((o.max ?? TRAINING_STATS_IMAGES) / Math.max(1, bySourceItems.size)));
  const rng = createRng(o.seed);
  const paths: string[] = [];
  for (const list of bySourceItems.values()) paths.push(...shuffled(list, rng).slice(0, per));
  const crops = await loadCrops(paths, prep);
  if (crops.pixels.length === 0) throw new DatasetError('No training image gave a crop to measure.');
  const source = new Map(items.map((it) => [it.path, it.sourceName]));
  const bySource: Record<string, number> = {};
  for (const p of crops.paths) bySource[source.get(p)!] = (bySource[source.get(p)!] ?? 0) + 1;
  const runner = await ChannelStatsRunner.create(model);
  try {
    const all = crops.pixels.map((_, i) => i);
    await runCrops(runner, crops, all, 16, o.onProgress);
    return { stats: runner.stats(), images: crops.pixels.length, bySource };
  } finally {
    await runner.close();
  }
}

/** Training images measured by default: per-channel means and variances over ~1000 crops × every position. */
export const TRAINING_STATS_IMAGES = 1000;
