import { analyzeImage } from '../model/analyzer.js';
import type { Classifier } from '../model/classifier.js';
import { HematoError } from '../errors.js';
import { scanDatasets, type Dataset } from './dataset.js';
import { evaluatePredictions, reliabilityBins, type Metrics, type ReliabilityBin } from './metrics.js';

export interface EvaluationResult extends Metrics {
  /** Images the model had no answer for: no white cell found (counted as errors above). */
  noCell: number;
  /** Images that could not be read (not counted above). */
  unreadable: { path: string; reason: string }[];
  skipped: { nonImage: number; unknownClass: Record<string, number> };
  imagesPerSecond: number;
  bins: ReliabilityBin[];
}

/**
 * Runs the model exactly as `predict` does on every image of labelled folders and scores it. An image
 * where no cell is found counts as a miss for its true class (the product does not guess).
 */
export async function evaluateModel(
  classifier: Classifier,
  dirs: string[],
  options: { onProgress?: (done: number, total: number) => void; concurrency?: number } = {},
): Promise<EvaluationResult & { dataset: Dataset }> {
  const ds = await scanDatasets(dirs, { knownClasses: classifier.classes });
  const k = classifier.classes.length;
  const classIdx = new Map(classifier.classes.map((c, i) => [c, i]));
  const truth: number[] = [];
  const rows: number[][] = [];
  const unreadable: EvaluationResult['unreadable'] = [];
  let noCell = 0;
  const t0 = performance.now();
  let done = 0;
  // A few images in flight keep decoding overlapped with the network.
  const concurrency = options.concurrency ?? 4;
  let next = 0;
  const worker = async () => {
    while (next < ds.items.length) {
      const item = ds.items[next++];
      try {
        const r = await analyzeImage(classifier, item.path);
        const t = classIdx.get(item.label)!;
        if (r.label === null) {
          noCell++;
          truth.push(t);
          // No prediction: a row that can never be correct (handled below).
          rows.push([]);
        } else {
          truth.push(t);
          rows.push(classifier.classes.map((c) => r.probabilities[c]));
        }
      } catch (e) {
        unreadable.push({ path: item.path, reason: e instanceof HematoError ? e.message : String(e) });
      }
      options.onProgress?.(++done, ds.items.length);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;

  const answered = rows.map((r, i) => ({ r, t: truth[i] })).filter((x) => x.r.length === k);
  const probs = new Float32Array(answered.length * k);
  answered.forEach((a, i) => probs.set(a.r, i * k));
  const m = evaluatePredictions(
    answered.map((a) => a.t),
    probs,
    classifier.classes,
  );
  const bins = reliabilityBins(
    answered.map((a) => a.t),
    probs,
    k,
  );
  // Fold the unanswered images back in as misses of their true class.
  const n = truth.length;
  const missed = new Array(k).fill(0);
  rows.forEach((r, i) => {
    if (r.length === 0) missed[truth[i]]++;
  });
  let correct = 0;
  classifier.classes.forEach((c, i) => (correct += m.confusionMatrix[i][i]));
  const perClass = { ...m.perClass };
  let f1sum = 0;
  let f1n = 0;
  classifier.classes.forEach((c, i) => {
    const pc = perClass[c];
    const support = pc.support + missed[i];
    const recall = support ? m.confusionMatrix[i][i] / support : 0;
    const f1 = pc.precision + recall > 0 ? (2 * pc.precision * recall) / (pc.precision + recall) : 0;
    perClass[c] = { precision: pc.precision, recall, f1, support };
    const predicted = m.confusionMatrix.reduce((a, row) => a + row[i], 0);
    if (support > 0 || predicted > 0) {
      f1sum += f1;
      f1n++;
    }
  });
  return {
    accuracy: n ? correct / n : 0,
    macroF1: f1n ? f1sum / f1n : 0,
    ece: m.ece,
    n,
    classes: classifier.classes,
    perClass,
    confusionMatrix: m.confusionMatrix,
    noCell,
    unreadable,
    skipped: ds.skipped,
    imagesPerSecond: n / seconds,
    bins,
    dataset: ds,
  };
}
