/**
 * What held-out (validation) images say of a trained model: calibrated probabilities, the card's metrics and
 * the review threshold. Shared by the frozen and fine-tuned paths and by test-time views.
 */
import { argmax } from '../model/softmax.js';
import type { ModelCard } from '../model/types.js';
import { fitTemperature, softmax } from './calibration.js';
import type { Dataset } from './dataset.js';
import { evaluatePredictions, type Metrics } from './metrics.js';

/** Accuracy wanted among results not flagged for review, unless told otherwise (`train --review-accuracy`). */
export const DEFAULT_REVIEW_ACCURACY = 0.95;

/** What held-out logits say once calibrated: the temperature, the metrics and the review threshold. */
export interface CalibratedHeldOut {
  temperature: number;
  probabilities: Float32Array;
  metrics: Metrics;
  reviewThreshold: number;
  /** The card's `validation` section. */
  record: ModelCard['validation'];
}

/** Fits the temperature on held-out logits (rows = `items` of `ds`) and scores the calibrated result. */
export function calibrateHeldOut(
  logits: Float32Array,
  items: readonly number[],
  ds: Dataset,
  reviewTargetAccuracy: number,
): CalibratedHeldOut {
  const k = ds.classes.length;
  const y = Int32Array.from(items, (i) => ds.items[i].labelIndex);
  const temperature = fitTemperature(logits, y, k);
  const probabilities = softmax(logits, k, temperature);
  const metrics = evaluatePredictions(y, probabilities, ds.classes);
  const perSource: ModelCard['validation']['perSource'] = {};
  ds.sources.forEach((src, si) => {
    let n = 0;
    let hit = 0;
    items.forEach((i, j) => {
      if (ds.items[i].source !== si) return;
      n++;
      if (argmax(probabilities, j, k) === y[j]) hit++;
    });
    perSource[src.name] = { n, accuracy: n ? hit / n : NaN };
  });
  return {
    temperature,
    probabilities,
    metrics,
    reviewThreshold: chooseReviewThreshold(probabilities, y, k, reviewTargetAccuracy),
    record: validationRecord(metrics, perSource),
  };
}

/** The card's `validation` section. */
export function validationRecord(
  m: Metrics,
  perSource: ModelCard['validation']['perSource'],
): ModelCard['validation'] {
  return { n: m.n, accuracy: m.accuracy, macroF1: m.macroF1, ece: m.ece, perSource };
}

/**
 * The lowest confidence at or above which validation predictions reach the target accuracy. Predictions
 * below it are flagged for review; never below 0.5, so a coin-flip is always flagged.
 */
export function chooseReviewThreshold(probs: Float32Array, y: Int32Array, k: number, target: number): number {
  const n = y.length;
  const pairs = Array.from({ length: n }, (_, i) => {
    const c = argmax(probs, i, k);
    return { conf: probs[i * k + c], ok: c === y[i] ? 1 : 0 };
  }).sort((a, b) => b.conf - a.conf);
  let ok = 0;
  let threshold = 1;
  pairs.forEach((p, i) => {
    ok += p.ok;
    // A threshold keeps every result at its confidence: judge ties together, at the last of them.
    if (i + 1 < n && pairs[i + 1].conf === p.conf) return;
    if (ok / (i + 1) >= target) threshold = p.conf;
  });
  return Math.max(0.5, Math.min(0.99, threshold));
}
