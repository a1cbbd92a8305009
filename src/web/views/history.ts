/** History page: stored cases with filters, paging and a CSV export of the same selection. */
import { api, type CaseQuery, type CaseResult } from '../api.js';
import type { AppContext, ViewHandle } from '../context.js';
import { reviewBadge } from '../components/review.js';
import { dataTable, h, replaceChildren } from '../dom.js';
import { displayLabel, formatDateTime, formatPercent, rangeText } from '../format.js';
import { caseHref, historyHref } from '../router.js';
import { announce, errorMessage } from '../status.js';

export const PAGE_SIZE = 20;

function reviewCell(c: CaseResult): HTMLElement {
  if (c.review === undefined) return h('span', { class: 'muted' }, '—');
  if (c.review === null) return h('span', { class: 'muted' }, 'Not reviewed');
  const corrected = c.review.label !== c.label;
  return h(
    'span',
    { class: `review-status${corrected ? ' review-status--corrected' : ''}` },
    h('span', { class: 'badge badge--done' }, corrected ? 'Corrected' : 'Confirmed'),
    ' ',
    displayLabel(c.review.label),
    h('span', { class: 'muted' }, ` · ${c.review.reviewer}`),
  );
}

function caseRow(c: CaseResult): HTMLTableRowElement {
  return h(
    'tr',
    { 'data-case-id': c.id },
    h(
      'td',
      { class: 'thumb-cell' },
      h('img', { src: api.imageUrl(c), alt: '', class: 'thumb', loading: 'lazy', width: '64', height: '48' }),
    ),
    h('td', null, h('a', { href: caseHref(c.id) }, c.file)),
    h('td', { class: 'nowrap' }, formatDateTime(c.createdAt)),
    h(
      'td',
      null,
      c.label === null ? h('span', { class: 'muted' }, 'No cell found') : displayLabel(c.label),
      c.label !== null && c.needsReview ? [' ', reviewBadge(c)] : null,
    ),
    h('td', { class: 'num' }, c.label === null ? '—' : formatPercent(c.confidence)),
    h('td', null, reviewCell(c)),
  );
}

export function renderHistory(main: HTMLElement, ctx: AppContext, query: URLSearchParams): ViewHandle {
  const label = query.get('label') ?? '';
  const reviewedRaw = query.get('reviewed');
  const reviewed = reviewedRaw === 'true' || reviewedRaw === 'false' ? reviewedRaw : undefined;
  const limit = Math.min(100, Math.max(1, Number(query.get('limit')) || PAGE_SIZE));
  const offset = Math.max(0, Math.floor(Number(query.get('offset')) || 0));
  const flagRaw = query.get('needsReview');
  const needsReview = flagRaw === 'true' || flagRaw === 'false' ? flagRaw : undefined;
  const file = (query.get('file') ?? '').slice(0, 200);
  const SORTS = ['newest', 'oldest', 'least-confident', 'most-confident'] as const;
  const sortRaw = query.get('sort');
  const sort = SORTS.find((x) => x === sortRaw);
  const filters: CaseQuery = {
    label: label || undefined,
    reviewed,
    needsReview,
    file: file || undefined,
    sort,
  };

  const labelSelect = h(
    'select',
    { id: 'filter-label', name: 'label' },
    h('option', { value: '' }, 'All classes'),
    ctx.classes.map((c) => h('option', { value: c, selected: c === label }, displayLabel(c))),
  );
  const reviewedSelect = h(
    'select',
    { id: 'filter-reviewed', name: 'reviewed' },
    h('option', { value: '' }, 'All'),
    h('option', { value: 'true', selected: reviewed === 'true' }, 'Reviewed'),
    h('option', { value: 'false', selected: reviewed === 'false' }, 'Not reviewed'),
  );
  const flagSelect = h(
    'select',
    { id: 'filter-needs-review', name: 'needsReview' },
    h('option', { value: '' }, 'All'),
    h('option', { value: 'true', selected: needsReview === 'true' }, 'Needs review'),
    h('option', { value: 'false', selected: needsReview === 'false' }, 'No flag'),
  );
  const fileInput = h('input', {
    id: 'filter-file',
    name: 'file',
    type: 'search',
    value: file,
    maxlength: '200',
  });
  const sortSelect = h(
    'select',
    { id: 'filter-sort', name: 'sort' },
    h('option', { value: '' }, 'Newest first'),
    h('option', { value: 'oldest', selected: sort === 'oldest' }, 'Oldest first'),
    h('option', { value: 'least-confident', selected: sort === 'least-confident' }, 'Least confident first'),
    h('option', { value: 'most-confident', selected: sort === 'most-confident' }, 'Most confident first'),
  );
  const filterForm = h(
    'form',
    { class: 'filters', role: 'search', 'aria-label': 'Filter cases' },
    h('div', { class: 'field' }, h('label', { for: 'filter-label' }, 'Predicted class'), labelSelect),
    h('div', { class: 'field' }, h('label', { for: 'filter-reviewed' }, 'Review status'), reviewedSelect),
    h('div', { class: 'field' }, h('label', { for: 'filter-needs-review' }, 'Model flag'), flagSelect),
    h('div', { class: 'field' }, h('label', { for: 'filter-file' }, 'File name contains'), fileInput),
    h('div', { class: 'field' }, h('label', { for: 'filter-sort' }, 'Order'), sortSelect),
    h(
      'div',
      { class: 'filters__actions' },
      h('button', { type: 'submit', class: 'btn btn--primary' }, 'Apply filters'),
      h('a', { href: '#/history', class: 'btn btn--secondary' }, 'Clear'),
    ),
  );
  filterForm.addEventListener('submit', (e) => {
    e.preventDefault();
    location.hash = historyHref({
      label: labelSelect.value,
      reviewed: reviewedSelect.value,
      needsReview: flagSelect.value,
      file: fileInput.value.trim(),
      sort: sortSelect.value,
      limit: query.get('limit') ?? undefined,
    });
  });

  const tableArea = h(
    'div',
    { class: 'table-area', 'aria-busy': 'true' },
    h('p', { class: 'muted' }, 'Loading cases…'),
  );
  const csvLink = h(
    'a',
    { href: api.csvUrl(filters), class: 'btn btn--secondary', download: 'hematovision-cases.csv' },
    'Download CSV',
  );

  replaceChildren(
    main,
    h(
      'div',
      { class: 'page-head' },
      h('h1', { id: 'page-heading', tabindex: '-1' }, 'Case history'),
      csvLink,
    ),
    filterForm,
    tableArea,
  );

  let cancelled = false;
  void (async () => {
    try {
      const { cases, total } = await api.listCases({ ...filters, limit, offset });
      if (cancelled) return;
      const pageHref = (o: number) =>
        historyHref({
          label,
          reviewed,
          needsReview,
          file: file || undefined,
          sort,
          limit: query.get('limit') ?? undefined,
          offset: Math.max(0, o),
        });
      const prevDisabled = offset <= 0;
      const nextDisabled = offset + cases.length >= total;
      const pager = h(
        'nav',
        { class: 'pager', 'aria-label': 'Pages' },
        h('span', { class: 'pager__range', 'aria-live': 'polite' }, rangeText(offset, cases.length, total)),
        prevDisabled
          ? h('span', { class: 'btn btn--secondary', 'aria-disabled': 'true' }, '‹ Previous')
          : h(
              'a',
              { class: 'btn btn--secondary', href: pageHref(offset - limit), rel: 'prev' },
              '‹ Previous',
            ),
        nextDisabled
          ? h('span', { class: 'btn btn--secondary', 'aria-disabled': 'true' }, 'Next ›')
          : h('a', { class: 'btn btn--secondary', href: pageHref(offset + limit), rel: 'next' }, 'Next ›'),
      );
      if (total === 0) {
        replaceChildren(
          tableArea,
          h(
            'p',
            { class: 'empty' },
            label || reviewed ? 'No case matches these filters. ' : 'No cases yet. ',
            h('a', { href: '#/' }, 'Analyse images'),
            ' to create some.',
          ),
        );
      } else {
        replaceChildren(
          tableArea,
          h(
            'div',
            { class: 'table-scroll' },
            dataTable({
              className: 'cases-table',
              caption: `Cases ${rangeText(offset, cases.length, total)}`,
              captionHidden: true,
              columns: [
                { label: h('span', { class: 'visually-hidden' }, 'Image') },
                { label: 'File' },
                { label: 'Analysed' },
                { label: 'Prediction' },
                { label: 'Confidence', num: true },
                { label: 'Review' },
              ],
              rows: cases.map(caseRow),
            }),
          ),
          pager,
        );
      }
      tableArea.setAttribute('aria-busy', 'false');
    } catch (err) {
      if (cancelled) return;
      tableArea.setAttribute('aria-busy', 'false');
      replaceChildren(
        tableArea,
        h('p', { class: 'error-text' }, `Cases could not be loaded: ${errorMessage(err)}`),
      );
      announce(`Cases could not be loaded: ${errorMessage(err)}`, 'error');
    }
  })();

  return {
    destroy() {
      cancelled = true;
    },
  };
}
