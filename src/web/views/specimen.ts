/**
 * Specimen page: its differential and progress toward the target count, the report (download, sign), and
 * cell-by-cell review: a queue of the cells needing review (most doubtful first) and a gallery of every cell
 * grouped by class. Keyboard: arrows move between cells, 1–8 reclassify to the model's classes in order,
 * Enter confirms the model's label.
 */
import { api, type SpecimenCell, type SpecimenDetail } from '../api.js';
import type { AppContext, ViewHandle } from '../context.js';
import { differentialSection } from '../components/differential.js';
import { REASON_TEXT } from '../components/review.js';
import { h, replaceChildren } from '../dom.js';
import { displayLabel, formatConfidence, formatDateTime } from '../format.js';
import { announce, errorMessage } from '../status.js';
import { reviewerField } from '../components/reviewer.js';
import { specimenDetails } from '../components/specimen-details.js';

/** Keys 1–8 (9 at most): the model card's classes in order. */
const MAX_KEYS = 9;

const cellKey = (c: Pick<SpecimenCell, 'caseId' | 'cell'>) => `${c.caseId}:${c.cell}`;

function reviewState(c: SpecimenCell): HTMLElement {
  if (c.review) {
    const corrected = c.review.label !== c.predictedLabel;
    return h('span', { class: 'badge badge--done' }, corrected ? 'Corrected' : 'Confirmed');
  }
  if (c.needsReview) return h('span', { class: 'badge badge--review' }, 'Needs review');
  return h('span', { class: 'muted' }, 'Not reviewed');
}

function tile(c: SpecimenCell, where: 'queue' | 'gallery'): HTMLButtonElement {
  const corrected = c.review !== null && c.review.label !== c.predictedLabel;
  const why = c.needsReview ? c.reviewReasons.map((r) => REASON_TEXT[r]).join('; ') : '';
  return h(
    'button',
    {
      type: 'button',
      class: `cell-tile${c.needsReview ? ' cell-tile--review' : ''}${c.review ? ' cell-tile--done' : ''}`,
      'data-cell': cellKey(c),
      'data-where': where,
      'aria-label': `${displayLabel(c.label)}, ${formatConfidence(c.confidence)}${corrected ? `, corrected from ${displayLabel(c.predictedLabel)}` : ''}, ${c.file}${c.box ? ` cell ${c.cell + 1}` : ''}${why ? `, needs review: ${why}` : ''}`,
      title: `${c.file}${c.box ? ` · cell ${c.cell + 1}` : ''}${why ? ` · ${why}` : ''}`,
    },
    h('img', { src: c.cropUrl, alt: '', class: 'cell-tile__img', loading: 'lazy', decoding: 'async' }),
    h('span', { class: 'cell-tile__label' }, displayLabel(c.label)),
    h(
      'span',
      { class: 'cell-tile__meta' },
      corrected ? `was ${displayLabel(c.predictedLabel)} ` : '',
      formatConfidence(c.confidence),
    ),
    reviewState(c),
    // Why the model flagged it: a confident cell can be flagged as unlike anything it learned.
    why ? h('span', { class: 'cell-tile__why' }, REASON_TEXT[c.reviewReasons[0]]) : null,
  );
}

export function renderSpecimen(main: HTMLElement, ctx: AppContext, id: string): ViewHandle {
  let detail: SpecimenDetail | null = null;
  let busy = false;
  const classes = ctx.classes.slice(0, MAX_KEYS);
  const reviewer = reviewerField(ctx, 'cell-reviewer', 'Reviewer');
  replaceChildren(main, h('p', { class: 'muted' }, 'Loading specimen…'));

  async function load(focus?: { key: string; where: string; position: number }): Promise<void> {
    try {
      detail = await api.getSpecimen(id);
    } catch (err) {
      replaceChildren(
        main,
        h('h1', { id: 'page-heading', tabindex: '-1' }, 'Specimen'),
        h('p', { class: 'error-text' }, errorMessage(err)),
        h('p', null, h('a', { href: '#/specimens' }, 'All specimens')),
      );
      return;
    }
    if (!main.isConnected) return;
    render(detail);
    if (focus) restoreFocus(focus);
  }

  function restoreFocus(f: { key: string; where: string; position: number }): void {
    const tiles = [...main.querySelectorAll<HTMLButtonElement>('.cell-tile')];
    const same = tiles.find((t) => t.dataset.cell === f.key && t.dataset.where === f.where);
    // A reviewed cell leaves the queue: the next doubtful one takes its place.
    const queue = tiles.filter((t) => t.dataset.where === 'queue');
    const next = f.where === 'queue' ? (queue[f.position] ?? queue.at(-1)) : same;
    (next ?? same ?? tiles[0])?.focus();
  }

  function render(d: SpecimenDetail): void {
    const s = d.specimen;
    const byKey = new Map(d.cells.map((c) => [cellKey(c), c]));
    const progress = h(
      'div',
      {
        class: 'progress',
        role: 'progressbar',
        'aria-valuemin': 0,
        'aria-valuemax': d.progress.target,
        'aria-valuenow': d.progress.counted,
        'aria-label': 'White cells counted',
      },
      h('div', { class: 'progress__bar' }),
    );
    (progress.firstElementChild as HTMLElement).style.width = `${d.progress.percent}%`;
    const diff = differentialSection(d.differential, ctx.classes, {
      images: s.imageCount,
      noCell: 0,
      rejected: 0,
    });

    const signName = reviewerField(ctx, 'sign-reviewer', 'Signed by');
    const signForm = h(
      'form',
      { class: 'sign-form' },
      signName.element,
      h(
        'button',
        { type: 'submit', class: 'btn btn--primary', disabled: d.signed || s.imageCount === 0 },
        `Sign revision ${d.revision}`,
      ),
    );
    signForm.addEventListener('submit', (e) => {
      e.preventDefault();
      void (async () => {
        const name = signName.name();
        if (name === null) {
          announce('Enter the name of the person signing.', 'error');
          return;
        }
        try {
          const o = await api.signSpecimen(s.id, name);
          signName.saved();
          announce(`Revision ${o.revision} signed by ${o.reviewer}.`, 'success');
          await load();
          document.getElementById('report-download')?.focus();
        } catch (err) {
          announce(errorMessage(err), 'error');
        }
      })();
    });
    const last = d.signoffs.at(-1);
    const reportStatus =
      d.signed && last
        ? h(
            'p',
            null,
            h('span', { class: 'badge badge--done' }, 'Signed'),
            ` Revision ${last.revision}, signed by ${last.reviewer} on ${formatDateTime(last.signedAt)}.`,
          )
        : h(
            'p',
            null,
            h('span', { class: 'badge badge--review' }, 'Draft'),
            ` Revision ${d.revision}, not signed${d.needsReview ? ` — ${d.needsReview} cell${d.needsReview === 1 ? '' : 's'} still need review` : ''}.`,
          );
    const report = h(
      'section',
      { class: 'panel report-panel', 'aria-labelledby': 'report-heading' },
      h('h2', { id: 'report-heading' }, 'Report'),
      reportStatus,
      h(
        'p',
        { class: 'form-actions' },
        h(
          'a',
          { id: 'report-download', class: 'btn btn--secondary', href: d.reportUrl, download: '' },
          d.signed ? 'Download signed PDF' : 'Download draft PDF',
        ),
        h('a', { class: 'btn btn--secondary', href: api.specimenCsvUrl(s.id), download: '' }, 'Cells as CSV'),
      ),
      d.signed ? null : signForm,
      d.signoffs.length > 0
        ? h(
            'ul',
            { class: 'revisions' },
            d.signoffs.map((o) =>
              h(
                'li',
                null,
                h('a', { href: o.reportUrl, download: '' }, `Revision ${o.revision}`),
                ` — ${o.reviewer}, ${formatDateTime(o.signedAt)}`,
              ),
            ),
          )
        : null,
    );

    const keys = h(
      'ol',
      { class: 'class-keys', 'aria-label': 'Reclassify with keys' },
      classes.map((c, i) =>
        h(
          'li',
          null,
          h(
            'button',
            { type: 'button', class: 'btn btn--secondary btn--small', 'data-label': c },
            h('kbd', null, String(i + 1)),
            ` ${displayLabel(c)}`,
          ),
        ),
      ),
    );
    const queueCells = d.queue.map((i) => d.cells[i]);
    const groups = new Map<string, SpecimenCell[]>();
    for (const c of d.cells) groups.set(c.label, [...(groups.get(c.label) ?? []), c]);
    const order = [...ctx.classes, ...[...groups.keys()].filter((k) => !ctx.classes.includes(k))];
    const review = h(
      'section',
      { class: 'panel cell-review', 'aria-labelledby': 'cells-heading' },
      h('h2', { id: 'cells-heading' }, 'Cells'),
      h(
        'p',
        { class: 'muted', id: 'cell-keys-hint' },
        'Select a cell, then: ',
        h('kbd', null, '←'),
        ' ',
        h('kbd', null, '→'),
        ' move · ',
        h('kbd', null, '1'),
        '–',
        h('kbd', null, String(classes.length)),
        ' reclassify · ',
        h('kbd', null, 'Enter'),
        ' confirm the model’s label.',
      ),
      h('div', { class: 'cell-review__reviewer' }, reviewer.element),
      keys,
      h('h3', null, `Needs review (${queueCells.length}), most doubtful first`),
      queueCells.length > 0
        ? h(
            'div',
            { class: 'cell-strip', 'data-region': 'queue' },
            queueCells.map((c) => tile(c, 'queue')),
          )
        : h('p', { class: 'muted' }, 'No cell needs review.'),
      order
        .filter((label) => groups.has(label))
        .map((label) => {
          const cells = groups.get(label) ?? [];
          return h(
            'div',
            { class: 'cell-group' },
            h('h3', null, `${displayLabel(label)} (${cells.length})`),
            h(
              'div',
              { class: 'cell-strip' },
              cells.map((c) => tile(c, 'gallery')),
            ),
          );
        }),
    );

    review.addEventListener('keydown', (e) => onKey(e, byKey));
    review.addEventListener('click', (e) => {
      const btn = (e.target as HTMLElement).closest<HTMLButtonElement>('.class-keys button');
      const current = main.querySelector<HTMLButtonElement>('.cell-tile[data-selected]');
      if (btn?.dataset.label && current) void reviewTile(current, btn.dataset.label, byKey);
    });
    review.addEventListener('focusin', (e) => {
      const t = (e.target as HTMLElement).closest<HTMLButtonElement>('.cell-tile');
      if (!t) return;
      for (const other of main.querySelectorAll('.cell-tile[data-selected]'))
        other.removeAttribute('data-selected');
      t.setAttribute('data-selected', '');
    });

    replaceChildren(
      main,
      h('p', { class: 'breadcrumb' }, h('a', { href: '#/specimens' }, 'Specimens'), ' ›'),
      h(
        'div',
        { class: 'page-head' },
        h('h1', { id: 'page-heading', tabindex: '-1' }, `Specimen ${s.id}`),
        h('a', { class: 'btn btn--primary', href: `#/?specimen=${encodeURIComponent(s.id)}` }, 'Add images'),
      ),
      h(
        'p',
        { class: 'muted' },
        [
          s.source,
          `created ${formatDateTime(s.createdAt)}`,
          `${s.imageCount} image${s.imageCount === 1 ? '' : 's'}`,
        ]
          .filter(Boolean)
          .join(' · '),
        s.note ? h('span', { class: 'specimen-note' }, ` — ${s.note}`) : null,
      ),
      h(
        'section',
        { class: 'panel specimen-progress', 'aria-label': 'Progress' },
        h(
          'p',
          null,
          h('strong', null, `${d.progress.counted} of ${d.progress.target}`),
          ' white cells counted',
          d.unclassified ? ` · ${d.unclassified} unclassified` : '',
          ` · ${d.needsReview} need${d.needsReview === 1 ? 's' : ''} review`,
        ),
        progress,
      ),
      h('div', { class: 'specimen-layout' }, diff, report),
      review,
      specimenDetails(s, ctx, () => load()),
    );
  }

  function onKey(e: KeyboardEvent, byKey: Map<string, SpecimenCell>): void {
    const t = (e.target as HTMLElement).closest<HTMLButtonElement>('.cell-tile');
    if (!t || e.altKey || e.ctrlKey || e.metaKey) return;
    const tiles = [...main.querySelectorAll<HTMLButtonElement>('.cell-tile')];
    const i = tiles.indexOf(t);
    if (e.key === 'ArrowRight' || e.key === 'ArrowDown') {
      e.preventDefault();
      tiles[Math.min(tiles.length - 1, i + 1)]?.focus();
    } else if (e.key === 'ArrowLeft' || e.key === 'ArrowUp') {
      e.preventDefault();
      tiles[Math.max(0, i - 1)]?.focus();
    } else if (e.key === 'Enter') {
      e.preventDefault();
      const c = byKey.get(t.dataset.cell ?? '');
      if (c) void reviewTile(t, c.predictedLabel, byKey);
    } else if (/^[1-9]$/.test(e.key) && Number(e.key) <= classes.length) {
      e.preventDefault();
      void reviewTile(t, classes[Number(e.key) - 1], byKey);
    }
  }

  async function reviewTile(
    t: HTMLButtonElement,
    label: string,
    byKey: Map<string, SpecimenCell>,
  ): Promise<void> {
    const c = byKey.get(t.dataset.cell ?? '');
    if (!c || busy) return;
    const name = reviewer.name();
    if (name === null) {
      announce('Enter your name as reviewer first.', 'error');
      return;
    }
    busy = true;
    // Keys pressed meanwhile are ignored; aria-busy says so (to assistive technology and to the browser test).
    main.setAttribute('aria-busy', 'true');
    const where = t.dataset.where ?? 'gallery';
    const position = [
      ...main.querySelectorAll<HTMLButtonElement>(`.cell-tile[data-where="${where}"]`),
    ].indexOf(t);
    try {
      await api.reviewCell(c.caseId, c.cell, { reviewLabel: label, reviewer: name });
      reviewer.saved();
      announce(
        label === c.predictedLabel
          ? `Confirmed ${displayLabel(label)} (${c.file}).`
          : `Reclassified ${displayLabel(c.predictedLabel)} as ${displayLabel(label)} (${c.file}).`,
        'success',
      );
      await load({ key: cellKey(c), where, position });
    } catch (err) {
      announce(errorMessage(err), 'error');
    } finally {
      busy = false;
      main.setAttribute('aria-busy', 'false');
    }
  }

  void load();
  return {};
}
