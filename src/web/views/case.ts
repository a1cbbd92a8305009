/** Case page: the image and the model's prediction, with the reviewer's form beside it. */
import { api, ApiError, EXTRA_REVIEW_LABELS, type CaseResult, type Review } from '../api.js';
import { probabilityTable } from '../components/probabilities.js';
import { deleteWithReason } from '../components/delete-dialog.js';
import { confidenceLine, predictionLabel, reviewAttribution, reviewBadge } from '../components/review.js';
import { reviewerField } from '../components/reviewer.js';
import { specimen } from '../components/specimen.js';
import type { AppContext, ViewHandle } from '../context.js';
import { dataTable, h, replaceChildren } from '../dom.js';
import { displayLabel, formatDateTime, formatPercent } from '../format.js';
import { announce, errorMessage } from '../status.js';

function cellsTable(c: CaseResult): HTMLElement | null {
  if (c.cells.length < 2) return null;
  return dataTable({
    caption: `${c.cells.length} located white cells`,
    columns: [{ label: '#', num: true }, { label: 'Type' }, { label: 'Confidence', num: true }],
    rows: c.cells.map((cell, i) =>
      h(
        'tr',
        null,
        h('td', { class: 'num' }, String(i + 1)),
        h('td', null, displayLabel(cell.label), cell.needsReview ? [' ', reviewBadge(cell)] : null),
        h('td', { class: 'num' }, formatPercent(cell.confidence)),
      ),
    ),
  });
}

function reviewHistory(reviews: Review[] | undefined): HTMLElement | null {
  if (!reviews || reviews.length < 2) return null;
  return h(
    'details',
    { class: 'review-history' },
    h('summary', null, `Review history (${reviews.length})`),
    h(
      'ol',
      { reversed: true },
      [...reviews]
        .reverse()
        .map((r) =>
          h(
            'li',
            null,
            h('strong', null, displayLabel(r.label)),
            ` by ${r.reviewer} on `,
            h('time', { datetime: r.reviewedAt }, formatDateTime(r.reviewedAt)),
            r.note ? h('span', { class: 'muted' }, ` — ${r.note}`) : null,
          ),
        ),
    ),
  );
}

function reviewSummary(review: Review | null | undefined, predicted: string | null): HTMLElement {
  if (!review) {
    return h(
      'div',
      { class: 'review-current review-current--none', id: 'review-current' },
      h('p', null, h('strong', null, 'Not reviewed yet.')),
      h(
        'p',
        { class: 'muted' },
        'The prediction stays a suggestion until a reviewer confirms or corrects it.',
      ),
    );
  }
  const corrected = review.label !== predicted;
  return h(
    'div',
    { class: `review-current${corrected ? ' review-current--corrected' : ''}`, id: 'review-current' },
    h('p', { class: 'review-current__head' }, corrected ? 'Corrected to' : 'Confirmed as'),
    h('p', { class: 'review-current__label', 'data-label': review.label }, displayLabel(review.label)),
    ...reviewAttribution(review, 'review-current__reviewer'),
    corrected && predicted ? h('p', { class: 'muted' }, `Model predicted ${displayLabel(predicted)}.`) : null,
  );
}

export function renderCase(main: HTMLElement, ctx: AppContext, id: string): ViewHandle {
  let cancelled = false;
  replaceChildren(
    main,
    h('p', null, h('a', { href: '#/history' }, '‹ Case history')),
    h('h1', { id: 'page-heading', tabindex: '-1' }, 'Case'),
    h('p', { class: 'muted', 'aria-busy': 'true' }, 'Loading case…'),
  );

  function render(c: CaseResult): void {
    const { root: figure, toggle } = specimen(c, 'large');
    const classes = ctx.classes.length ? ctx.classes : Object.keys(c.probabilities);
    const reviewArea = h('div', null, reviewSummary(c.review, c.label), reviewHistory(c.reviews));

    const reviewer = reviewerField(ctx, 'review-reviewer', 'Reviewer');
    const selected = c.review?.label ?? c.label;
    const option = (k: string) => h('option', { value: k, selected: k === selected }, displayLabel(k));
    const labelSelect = h(
      'select',
      { id: 'review-label', name: 'reviewLabel', required: true },
      selected === null ? h('option', { value: '', selected: true }, 'Choose…') : null,
      h('optgroup', { label: 'Model classes' }, classes.map(option)),
      h('optgroup', { label: 'Outside the model' }, EXTRA_REVIEW_LABELS.map(option)),
    );
    const note = h('textarea', { id: 'review-note', name: 'note', rows: '3', maxlength: '2000' });
    const saveBtn = h('button', { type: 'submit', class: 'btn btn--primary' }, 'Save review');
    const confirmBtn = h(
      'button',
      {
        type: 'button',
        class: 'btn btn--secondary',
        disabled: c.label === null,
        title: c.label ? `Record ${displayLabel(c.label)} as reviewed` : 'No prediction to confirm',
      },
      c.label ? `Confirm ${displayLabel(c.label)}` : 'Confirm prediction',
    );
    const form = h(
      'form',
      { class: 'review-form', 'aria-labelledby': 'review-form-heading', novalidate: false },
      h('h3', { id: 'review-form-heading' }, c.review ? 'Change review' : 'Record review'),
      reviewer.element,
      h('div', { class: 'field' }, h('label', { for: 'review-label' }, 'Cell type'), labelSelect),
      h(
        'div',
        { class: 'field' },
        h('label', { for: 'review-note' }, 'Note ', h('span', { class: 'muted' }, '(optional)')),
        note,
      ),
      h('div', { class: 'form-actions' }, saveBtn, confirmBtn),
    );

    async function submit(reviewLabel: string): Promise<void> {
      const name = reviewer.name();
      if (name === null || !form.reportValidity()) return;
      saveBtn.disabled = confirmBtn.disabled = true;
      announce('Saving review…', 'busy');
      try {
        await api.reviewCase(c.id, { reviewLabel, reviewer: name, note: note.value.trim() });
        reviewer.saved();
        // Reload rather than trusting the PATCH body shape: the page then shows exactly what is stored.
        const fresh = await api.getCase(c.id);
        if (cancelled) return;
        render(fresh);
        announce(`Review saved: ${displayLabel(fresh.review?.label ?? reviewLabel)}.`, 'success');
        document.getElementById('review-current')?.focus();
      } catch (err) {
        announce(`Review not saved: ${errorMessage(err)}`, 'error');
        saveBtn.disabled = false;
        confirmBtn.disabled = c.label === null;
      }
    }
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      void submit(labelSelect.value);
    });
    confirmBtn.addEventListener('click', () => {
      if (c.label) {
        labelSelect.value = c.label;
        void submit(c.label);
      }
    });

    const [deleteBtn, dialog] = deleteWithReason({
      id: 'delete',
      what: 'case',
      title: 'Delete this case?',
      description:
        `${c.file} leaves the history, its specimen and exports. Nothing is erased: an admin can ` +
        'restore it from the audit trail, which keeps who deleted it and why.',
      remove: (reason) => api.deleteCase(c.id, reason),
      deleted: `Case ${c.file} deleted.`,
      after: '#/history',
    });

    const found = c.label !== null;
    const role = ctx.auth ? ctx.account?.role : 'admin';
    const mayReview = role === 'reviewer' || role === 'admin';
    const mayDelete = role === 'admin';
    replaceChildren(
      main,
      h('p', { class: 'breadcrumb' }, h('a', { href: '#/history' }, '‹ Case history')),
      h(
        'div',
        { class: 'page-head' },
        h('h1', { id: 'page-heading', tabindex: '-1' }, c.file),
        h(
          'p',
          { class: 'muted' },
          `Analysed ${formatDateTime(c.createdAt)}`,
          c.model ? ` by ${c.model.name} ${c.model.version}` : '',
          c.model?.tta ? ' with test-time augmentation (8 views per cell)' : '',
          ' · case ',
          h('code', null, c.id),
        ),
      ),
      h(
        'div',
        { class: 'case-layout' },
        h(
          'section',
          { class: 'panel case-image', 'aria-label': 'Image' },
          figure,
          h('div', { class: 'result-card__tools' }, toggle),
        ),
        h(
          'section',
          { class: 'panel case-prediction', 'aria-labelledby': 'prediction-heading' },
          h('h2', { id: 'prediction-heading' }, 'Model prediction'),
          h('p', { class: 'prediction' }, predictionLabel(c.label)),
          found ? confidenceLine(c) : null,
          c.message ? h('p', { class: 'notice' }, c.message) : null,
          Object.keys(c.probabilities).length ? probabilityTable(c.probabilities, classes, c.label) : null,
          cellsTable(c),
        ),
        h(
          'section',
          { class: 'panel case-review', 'aria-labelledby': 'review-heading' },
          h('h2', { id: 'review-heading' }, 'Review'),
          reviewArea,
          mayReview ? form : h('p', { class: 'muted' }, 'Reviews are recorded by reviewer accounts.'),
        ),
      ),
      mayDelete ? h('div', { class: 'danger-zone' }, deleteBtn, dialog) : null,
    );
    document.getElementById('review-current')?.setAttribute('tabindex', '-1');
    // Re-rendering removed the focused element; keep keyboard users at the top of the page, not lost.
    if (document.activeElement === document.body) document.getElementById('page-heading')?.focus();
  }

  void (async () => {
    try {
      const c = await api.getCase(id);
      if (cancelled) return;
      render(c);
      document.title = `${c.file} — HematoVision`;
    } catch (err) {
      if (cancelled) return;
      const notFound = err instanceof ApiError && err.status === 404;
      replaceChildren(
        main,
        h('p', null, h('a', { href: '#/history' }, '‹ Case history')),
        h(
          'h1',
          { id: 'page-heading', tabindex: '-1' },
          notFound ? 'Case not found' : 'Case could not be loaded',
        ),
        h('p', { class: 'error-text' }, notFound ? 'It may have been deleted.' : errorMessage(err)),
      );
      if (!notFound) announce(`Case could not be loaded: ${errorMessage(err)}`, 'error');
    }
  })();

  return {
    destroy() {
      cancelled = true;
    },
  };
}
