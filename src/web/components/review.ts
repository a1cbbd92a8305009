import type { Review } from '../api.js';
import { REVIEW_REASON_TEXT, type ReviewReason } from '../../model/types.js';
import { h } from '../dom.js';
import { displayLabel, formatConfidence, formatDateTime } from '../format.js';

/** "by <reviewer> on <time>" and the reviewer's note, as the case page and practice mode show them. */
export function reviewAttribution(review: Review, reviewerClass: string): (HTMLElement | null)[] {
  return [
    h(
      'p',
      { class: 'review-current__by' },
      'by ',
      h('strong', { class: reviewerClass }, review.reviewer),
      ' on ',
      h('time', { datetime: review.reviewedAt }, formatDateTime(review.reviewedAt)),
    ),
    review.note
      ? h(
          'p',
          { class: 'review-current__note' },
          h('span', { class: 'visually-hidden' }, 'Note: '),
          review.note,
        )
      : null,
  ];
}

/** Each review reason as a person would say it. */
export const REASON_TEXT: Record<ReviewReason, string> = REVIEW_REASON_TEXT;

/** "Needs review" with its reasons (the reasons also in the tooltip), or null when none apply. */
export function reviewBadge(p: { needsReview: boolean; reviewReasons?: ReviewReason[] }): HTMLElement | null {
  if (!p.needsReview) return null;
  const why = (p.reviewReasons ?? []).map((r) => REASON_TEXT[r]).join('; ');
  return h(
    'span',
    { class: 'badge badge--review', title: why || 'Needs review' },
    why ? `Needs review: ${why}` : 'Needs review',
  );
}

/** The confidence line of a prediction, with the needs-review badge when it applies. */
/** The predicted class as the analyse card, the case page and practice mode show it (dimmed when none). */
export function predictionLabel(label: string | null): HTMLElement {
  return h(
    'span',
    { class: `prediction__label${label !== null ? '' : ' prediction__label--none'}` },
    displayLabel(label),
  );
}

export function confidenceLine(p: {
  confidence: number;
  needsReview: boolean;
  reviewReasons?: ReviewReason[];
}): HTMLElement {
  return h(
    'p',
    { class: 'prediction__meta' },
    h('span', null, 'Confidence ', h('strong', { class: 'num' }, formatConfidence(p.confidence))),
    reviewBadge(p),
  );
}
