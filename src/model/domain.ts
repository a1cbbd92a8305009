import type { ImagePrediction } from './types.js';

/**
 * Share of a batch's images beyond the image-familiarity threshold above which the batch as a whole is
 * called unfamiliar. The threshold sits at the 99th percentile of the training labs' own validation
 * images, so a known lab's batch has about 1 % beyond it; a fifth is far outside that.
 */
export const UNFAMILIAR_BATCH_SHARE = 0.2;

/** How far a batch of images lies from the labs a model learned from. */
export interface DomainCheck {
  /** Images with a familiarity distance (a model without the check gives none). */
  n: number;
  /** Median image distance in units of the per-image threshold: about 0.3–0.5 on a training lab's images. */
  score: number;
  /** Share of the images beyond the per-image threshold (each flagged `unfamiliar_image`). */
  unfamiliarShare: number;
  /** True when more than UNFAMILIAR_BATCH_SHARE of the images lie beyond it. */
  unfamiliar: boolean;
  /** A plain sentence for a person. */
  summary: string;
}

/**
 * The batch-level domain check (predict on a folder, a multi-image request, evaluate): a lab learns from
 * its first batch whether the model has seen images like theirs. Undefined when no image has a distance.
 */
export function checkDomain(images: Pick<ImagePrediction, 'distance'>[]): DomainCheck | undefined {
  const d = images.flatMap((i) => (i.distance ? [i.distance.image] : [])).sort((a, b) => a - b);
  if (d.length === 0) return undefined;
  const mid = d.length >> 1;
  const score = d.length % 2 ? d[mid] : (d[mid - 1] + d[mid]) / 2;
  const unfamiliarShare = d.filter((x) => x > 1).length / d.length;
  const unfamiliar = unfamiliarShare > UNFAMILIAR_BATCH_SHARE;
  const share = `${Math.round(unfamiliarShare * 100)} % of ${d.length} image${d.length > 1 ? 's' : ''}`;
  const summary = unfamiliar
    ? `These images differ from every lab the model learned from (${share} beyond its threshold; median ` +
      `distance ${score.toFixed(2)}, where 1 is the threshold): stain, scale or optics are new to it, so its ` +
      'answers are less reliable here and those images are flagged for review. Adapting the model to this ' +
      "lab's labelled images (train --from) fixes this."
    : `These images look like the labs the model learned from (${share} beyond its threshold; median ` +
      `distance ${score.toFixed(2)}, where 1 is the threshold).`;
  return { n: d.length, score: Math.round(score * 1000) / 1000, unfamiliarShare, unfamiliar, summary };
}
