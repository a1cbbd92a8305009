import type { Review } from '../api.js';
import { h } from '../dom.js';
import { formatDateTime, formatPercent } from '../format.js';

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

/** The confidence line of a prediction, with the needs-review badge when it applies. */
export function confidenceLine(p: { confidence: number; needsReview: boolean }): HTMLElement {
  return h(
    'p',
    { class: 'prediction__meta' },
    h('span', null, 'Confidence ', h('strong', { class: 'num' }, formatPercent(p.confidence))),
    p.needsReview ? h('span', { class: 'badge badge--review' }, 'Needs review') : null,
  );
}
