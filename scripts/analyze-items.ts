/**
 * Labelled images through the product's own path (locate, crop, classify, flag), four in flight: the loop the
 * review scripts share. Each answered item is handed to `onAnswer` with its analysis and a ReviewedAnswer; an
 * image that cannot be read (a HematoError) is counted, anything else is a bug and throws.
 */
import { HematoError } from '../src/errors.js';
import { analyzeImage, type ImageAnalysis } from '../src/model/analyzer.js';
import type { Classifier } from '../src/model/classifier.js';
import type { ReviewedAnswer } from '../src/training/review.js';

export async function analyzeItems<T extends { path: string; label: string }>(
  classifier: Classifier,
  items: T[],
  onAnswer: (item: T, analysis: ImageAnalysis, answer: ReviewedAnswer) => void,
): Promise<{ unreadable: number }> {
  let next = 0;
  let unreadable = 0;
  const worker = async () => {
    while (next < items.length) {
      const it = items[next++];
      try {
        const r = await analyzeImage(classifier, it.path);
        onAnswer(it, r, {
          correct: r.label === it.label,
          needsReview: r.needsReview,
          reviewReasons: r.reviewReasons,
          confidence: r.confidence,
        });
      } catch (e) {
        if (!(e instanceof HematoError)) throw e;
        unreadable++;
      }
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  return { unreadable };
}
