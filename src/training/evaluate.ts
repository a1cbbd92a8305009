import { analyzeImage } from '../model/analyzer.js';
import type { Classifier } from '../model/classifier.js';
import { HematoError } from '../errors.js';
import { scanDatasets, type Dataset } from './dataset.js';
import { evaluatePredictions, reliabilityBins, type Metrics, type ReliabilityBin } from './metrics.js';

export interface EvaluationResult extends Metrics {
  /** Images the model had no answer for: no white cell found (= `unanswered`, counted as errors above). */
  noCell: number;
  /** Images that could not be read (not counted above). */
  unreadable: { path: string; reason: string }[];
  skipped: { nonImage: number; unknownClass: Record<string, number> };
  imagesPerSecond: number;
  /** Of the answered images. */
  bins: ReliabilityBin[];
}

/**
 * Runs the model exactly as `predict` does on every image of labelled folders and scores it. An image
 * where no cell is found counts as a miss for its true class (the product does not guess).
 */
export async function evaluateModel(
  classifier: Classifier,
  dirs: string[],
  options: { onProgress?: (done: number, total: number) => void; concurrency?: number; tta?: boolean } = {},
): Promise<EvaluationResult & { dataset: Dataset }> {
  const ds = await scanDatasets(dirs, { knownClasses: classifier.classes });
  const k = classifier.classes.length;
  const classIdx = new Map(classifier.classes.map((c, i) => [c, i]));
  const truth: number[] = [];
  // null: no white cell found, so no answer.
  const rows: (number[] | null)[] = [];
  const unreadable: EvaluationResult['unreadable'] = [];
  const t0 = performance.now();
  let done = 0;
  // A few images in flight keep decoding overlapped with the network.
  const concurrency = options.concurrency ?? 4;
  let next = 0;
  const worker = async () => {
    while (next < ds.items.length) {
      const item = ds.items[next++];
      try {
        const r = await analyzeImage(classifier, item.path, { tta: options.tta });
        truth.push(classIdx.get(item.label)!);
        rows.push(r.label === null ? null : classifier.classes.map((c) => r.probabilities[c]));
      } catch (e) {
        unreadable.push({ path: item.path, reason: e instanceof HematoError ? e.message : String(e) });
      }
      options.onProgress?.(++done, ds.items.length);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;

  const n = truth.length;
  const probs = new Float32Array(n * k);
  rows.forEach((r, i) => {
    if (r) probs.set(r, i * k);
  });
  const unanswered = rows.map((r) => r === null);
  const m = evaluatePredictions(truth, probs, classifier.classes, { unanswered });
  return {
    ...m,
    noCell: m.unanswered,
    unreadable,
    skipped: ds.skipped,
    imagesPerSecond: n / seconds,
    bins: reliabilityBins(truth, probs, k, { unanswered }),
    dataset: ds,
  };
}
