import { analyzeImage } from '../model/analyzer.js';
import type { Classifier } from '../model/classifier.js';
import { checkDomain, type DomainCheck } from '../model/domain.js';
import { HematoError } from '../errors.js';
import { scanDatasets, type Dataset } from './dataset.js';
import { evaluatePredictions, reliabilityBins, type Metrics, type ReliabilityBin } from './metrics.js';
import { reviewCurve, reviewStats, type ReviewedAnswer, type ReviewStats } from './review.js';

export interface EvaluationResult extends Metrics {
  /** Images the model had no answer for: no white cell found (= `unanswered`, counted as errors above). */
  noCell: number;
  /** Images that could not be read (not counted above). */
  unreadable: { path: string; reason: string }[];
  skipped: { nonImage: number; unknownClass: Record<string, number> };
  imagesPerSecond: number;
  /** Of the answered images. */
  bins: ReliabilityBin[];
  /**
   * Review over every image scored (unknown classes included with `scoreUnknown`): how many are flagged, how
   * accurate the rest are, and how many are wrong without a flag (silent errors).
   */
  review: ReviewStats;
  /** Accepted accuracy against review rate as the confidence threshold moves (the other reasons kept). */
  reviewCurve: ReturnType<typeof reviewCurve>;
  /** How far the images lie from the labs the model learned from (a model with familiarity checks). */
  domain?: DomainCheck;
  /** With `scoreUnknown`: images of classes the model does not know, and how many it flagged. */
  unknownClasses: Record<string, { n: number; flagged: number }>;
}

/**
 * Runs the model exactly as `predict` does on every image of labelled folders and scores it. An image
 * where no cell is found counts as a miss for its true class (the product does not guess).
 */
export async function evaluateModel(
  classifier: Classifier,
  dirs: string[],
  options: {
    onProgress?: (done: number, total: number) => void;
    concurrency?: number;
    tta?: boolean;
    /**
     * Also run the images of classes the model does not know (every answer on them is wrong): what
     * leave-one-class-out measures, and what a lab with such cells in its smears meets.
     */
    scoreUnknown?: boolean;
  } = {},
): Promise<EvaluationResult & { dataset: Dataset }> {
  const ds = await scanDatasets(dirs, { knownClasses: classifier.classes });
  const unknownItems = options.scoreUnknown
    ? (await scanDatasets(dirs)).items.filter((it) => !classifier.classes.includes(it.label))
    : [];
  const answers: ReviewedAnswer[] = [];
  const distances: { distance?: { cell: number; image: number } }[] = [];
  const unknownClasses: EvaluationResult['unknownClasses'] = {};
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
  const all = [...ds.items, ...unknownItems];
  const worker = async () => {
    while (next < all.length) {
      const item = all[next++];
      try {
        const r = await analyzeImage(classifier, item.path, { tta: options.tta });
        const known = classIdx.has(item.label);
        if (known) {
          truth.push(classIdx.get(item.label)!);
          rows.push(r.label === null ? null : classifier.classes.map((c) => r.probabilities[c]));
        } else {
          const u = (unknownClasses[item.label] ??= { n: 0, flagged: 0 });
          u.n++;
          if (r.needsReview) u.flagged++;
        }
        answers.push({
          correct: known && r.label === item.label,
          needsReview: r.needsReview,
          reviewReasons: r.reviewReasons,
          confidence: r.confidence,
        });
        distances.push(r);
      } catch (e) {
        unreadable.push({ path: item.path, reason: e instanceof HematoError ? e.message : String(e) });
      }
      options.onProgress?.(++done, all.length);
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
    imagesPerSecond: answers.length / seconds,
    bins: reliabilityBins(truth, probs, k, { unanswered }),
    review: reviewStats(answers),
    reviewCurve: reviewCurve(answers),
    domain: checkDomain(distances),
    unknownClasses,
    dataset: ds,
  };
}
