import type { Box } from '../imaging/types.js';

type Rect = Pick<Box, 'x' | 'y' | 'width' | 'height'>;

/** Intersection over union of two boxes; 0 when either has no area. */
export function iou(a: Rect, b: Rect): number {
  const ix = Math.max(0, Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x));
  const iy = Math.max(0, Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y));
  const inter = ix * iy;
  const union = a.width * a.height + b.width * b.height - inter;
  return union > 0 ? inter / union : 0;
}

export interface ImageMatch {
  /** Detections matched to a ground-truth box, with their IoU. */
  matches: { detection: number; truth: number; iou: number }[];
  truePositives: number;
  falsePositives: number;
  falseNegatives: number;
}

/**
 * Matches the detections of one image to its ground truth, greedily by score (best first, as in Pascal VOC):
 * each detection takes the unmatched truth box it overlaps most, if that IoU ≥ threshold. One-to-one.
 */
export function matchDetections(detections: Box[], truth: Rect[], threshold = 0.5): ImageMatch {
  const order = detections.map((_, i) => i).sort((a, b) => detections[b].score - detections[a].score);
  const taken = new Array<boolean>(truth.length).fill(false);
  const matches: ImageMatch['matches'] = [];
  for (const d of order) {
    let best = -1;
    let bestIou = threshold;
    for (let t = 0; t < truth.length; t++) {
      if (taken[t]) continue;
      const v = iou(detections[d], truth[t]);
      if (v >= bestIou) {
        bestIou = v;
        best = t;
      }
    }
    if (best >= 0) {
      taken[best] = true;
      matches.push({ detection: d, truth: best, iou: bestIou });
    }
  }
  return {
    matches,
    truePositives: matches.length,
    falsePositives: detections.length - matches.length,
    falseNegatives: truth.length - matches.length,
  };
}

export interface DetectionMetrics {
  precision: number;
  recall: number;
  /** Mean IoU over matched pairs (0 when none matched). */
  meanIoU: number;
  truePositives: number;
  falsePositives: number;
  falseNegatives: number;
  /** Number of images. */
  n: number;
}

/**
 * Precision, recall and mean IoU of matched pairs over a set of images.
 * With no detections at all precision is 1 (nothing wrong was said); with no truth boxes recall is 1.
 */
export function detectionMetrics(
  images: { detections: Box[]; truth: Rect[] }[],
  threshold = 0.5,
): DetectionMetrics {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  let iouSum = 0;
  for (const { detections, truth } of images) {
    const m = matchDetections(detections, truth, threshold);
    tp += m.truePositives;
    fp += m.falsePositives;
    fn += m.falseNegatives;
    for (const x of m.matches) iouSum += x.iou;
  }
  return {
    precision: tp + fp > 0 ? tp / (tp + fp) : 1,
    recall: tp + fn > 0 ? tp / (tp + fn) : 1,
    meanIoU: tp > 0 ? iouSum / tp : 0,
    truePositives: tp,
    falsePositives: fp,
    falseNegatives: fn,
    n: images.length,
  };
}
