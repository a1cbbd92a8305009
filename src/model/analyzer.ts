import { HematoError } from '../errors.js';
import type { Classifier } from './classifier.js';
import { renderHeatmapPng, type CamRegion } from './heatmap.js';
import { prepareImage, writeInput, type PreparedImage } from './inputs.js';
import type { PreparePool } from './prepare-pool.js';
import type { Priority } from './run-queue.js';
import { decodeImage } from '../imaging/decode.js';
import type { Box } from '../imaging/types.js';
import { imagePrediction } from './predictions.js';
import type { CellPrediction, ImagePrediction } from './types.js';

export interface AnalyzeOptions {
  /** Also render the class activation map of each prediction as a PNG overlay (`heatmapPng`). */
  heatmap?: boolean;
  /**
   * Return the class activation maps as data (`heatmap`) without rendering them: cheap, and enough to render
   * the overlay later with `renderHeatmap` (a server can render on demand instead of on every request).
   */
  cams?: boolean;
  /**
   * Test-time augmentation: each cell's 8 flips and turns, logits averaged (more accurate, 8× the network
   * time; needs a card with `testTimeAugmentation`).
   */
  tta?: boolean;
  /**
   * Interactive work (someone waits for an image or two) runs before bulk work (test-time augmentation, many
   * images) in the network's queue and uses the ordinary preparation threads; bulk preparation has a
   * low-priority thread of its own.
   * While 'interactive' work is in flight, bulk work waits (bulk-hold.ts). Default: the network decides per
   * call by its size (run-queue.ts), preparation counts as interactive, and nothing is held back.
   */
  priority?: Priority;
}

/** Where the model looked, as plain JSON-safe data: one 7×7 map per classified region. */
export interface HeatmapData {
  regions: { x: number; y: number; size: number; cam: number[]; box?: Box; label?: string }[];
}

/** What HematoVision says of one image, with its size and (on request) the heat map overlay. */
export interface ImageAnalysis extends ImagePrediction {
  width: number;
  height: number;
  /** PNG: the image with the class activation map of the predicted class(es) overlaid; boxes drawn for cells. */
  heatmapPng?: Buffer;
  /** With `cams`: the maps as data, for `renderHeatmap`. */
  heatmap?: HeatmapData;
}

/** Renders an overlay from an image and the `heatmap` data of its analysis. */
export async function renderHeatmap(input: Buffer | string, data: HeatmapData): Promise<Buffer> {
  const image = await decodeImage(input);
  return renderHeatmapPng(
    image,
    data.regions.map((r) => ({ ...r, cam: Float32Array.from(r.cam) })),
  );
}

/** One image of a batch: its analysis, or why it could not be read. */
export type BatchItem = { ok: true; analysis: ImageAnalysis } | { ok: false; error: HematoError };

/** Image → located cells → one network run → predictions (and a heat map on request). */
export async function analyzeImage(
  classifier: Classifier,
  input: Buffer | string,
  options: AnalyzeOptions = {},
  pool?: PreparePool,
): Promise<ImageAnalysis> {
  const end = options.priority === 'interactive' ? classifier.hold.begin() : undefined;
  try {
    const prep = classifier.card.preprocessing;
    const opts = { keepImage: options.heatmap === true };
    const prepared = await (pool ? pool.prepare(input, prep, opts) : prepareImage(input, prep, opts));
    return (await runPrepared(classifier, [prepared], options))[0];
  } finally {
    end?.();
  }
}

/**
 * Many images at once: decoding overlaps across images and all their cells go through the network in
 * batches, which is what makes batch throughput higher than one-by-one. A bad image fails alone. With a
 * pool, decoding and cell location run in its threads, the images of this call taking turns with other
 * calls' (one request's 50 images do not queue ahead of another's one).
 */
export async function analyzeBatch(
  classifier: Classifier,
  inputs: (Buffer | string)[],
  options: AnalyzeOptions & { batchSize?: number } = {},
  pool?: PreparePool,
): Promise<BatchItem[]> {
  // Interactive work holds back bulk work while it runs (bulk-hold.ts).
  const end = options.priority === 'interactive' ? classifier.hold.begin() : undefined;
  try {
    return await analyzeAll(classifier, inputs, options, pool);
  } finally {
    end?.();
  }
}

async function analyzeAll(
  classifier: Classifier,
  inputs: (Buffer | string)[],
  options: AnalyzeOptions & { batchSize?: number },
  pool?: PreparePool,
): Promise<BatchItem[]> {
  const prep = classifier.card.preprocessing;
  const opts = { keepImage: options.heatmap === true };
  const group = pool?.group(options.priority);
  const settled = await Promise.allSettled(
    inputs.map((input) => (pool ? pool.prepare(input, prep, opts, group) : prepareImage(input, prep, opts))),
  );
  const out: BatchItem[] = new Array(inputs.length);
  const good: { index: number; prepared: PreparedImage }[] = [];
  settled.forEach((s, index) => {
    if (s.status === 'fulfilled') good.push({ index, prepared: s.value });
    else if (s.reason instanceof HematoError) out[index] = { ok: false, error: s.reason };
    else throw s.reason;
  });
  const batchSize = options.batchSize ?? 16;
  for (let start = 0; start < good.length;) {
    // Fill a batch by cells, not images: a field can hold several.
    let cells = 0;
    let end = start;
    while (end < good.length && (end === start || cells + good[end].prepared.regions.length <= batchSize)) {
      cells += good[end].prepared.regions.length;
      end++;
    }
    const chunk = good.slice(start, end);
    const results = await runPrepared(
      classifier,
      chunk.map((c) => c.prepared),
      options,
    );
    chunk.forEach((c, j) => (out[c.index] = { ok: true, analysis: results[j] }));
    start = end;
  }
  return out;
}

/** Already prepared images through the network: each image's answer, cells and (on request) heat map. */
export async function runPrepared(
  classifier: Classifier,
  images: PreparedImage[],
  options: AnalyzeOptions,
): Promise<ImageAnalysis[]> {
  const heat = options.heatmap === true;
  const wantCams = heat || options.cams === true;
  const s = classifier.card.preprocessing.inputSize;
  const total = images.reduce((a, p) => a + p.regions.length, 0);
  const batch = new Float32Array(total * 3 * s * s);
  let slot = 0;
  for (const p of images) for (const r of p.regions) writeInput(r.pixels, batch, slot++);
  const out =
    total > 0
      ? await classifier.run(batch, total, { cam: wantCams, tta: options.tta, priority: options.priority })
      : {
          probabilities: new Float32Array(0),
          views: 1,
          reviewThreshold: classifier.reviewThreshold(options.tta),
        };
  const k = classifier.classes.length;

  let row = 0;
  return Promise.all(
    images.map(async (prepared) => {
      const size = { width: prepared.width, height: prepared.height };
      const first = row;
      const cells: CellPrediction[] = [];
      const cams: CamRegion[] = [];
      for (const r of prepared.regions) {
        const p = classifier.toPrediction(out, row);
        if (r.box) cells.push({ ...p, box: r.box });
        if ('cam' in out && out.cam) {
          const c = classifier.classes.indexOf(p.label);
          const cam = out.cam.slice((row * k + c) * 49, (row * k + c + 1) * 49);
          cams.push({ cam, ...r.square, box: r.box ?? undefined, label: p.label });
        }
        row++;
      }
      const heatmapPng = heat && prepared.image ? await renderHeatmapPng(prepared.image, cams) : undefined;
      const heatmap: HeatmapData | undefined = options.cams
        ? { regions: cams.map((c) => ({ ...c, cam: Array.from(c.cam, (v) => Math.round(v * 1e4) / 1e4) })) }
        : undefined;
      const primary = prepared.regions.length > 0 ? classifier.toPrediction(out, first) : null;
      return { ...size, ...imagePrediction(primary, cells, prepared.damage), heatmapPng, heatmap };
    }),
  );
}
