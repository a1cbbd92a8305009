/**
 * Differential count of a batch: one table that is both the record and the overview — each row's bar is its
 * share of the white cells, drawn with CSS (the numbers stay real text; no chart library, no canvas).
 */
import type { Differential } from '../api.js';
import { dataTable, h } from '../dom.js';
import { differentialRows, displayLabel, formatPercent } from '../format.js';
import { bar } from './probabilities.js';

export function differentialSection(
  diff: Differential,
  classes: string[],
  summary: { images: number; noCell: number; rejected: number },
): HTMLElement {
  const rows = differentialRows(diff.counts, classes);
  const total = rows.reduce((s, r) => s + r.count, 0);
  const headingId = 'differential-heading';

  const table = dataTable({
    className: 'differential__table',
    caption: 'Differential count by class',
    captionHidden: true,
    columns: [
      { label: 'Class' },
      { label: 'Count', num: true },
      { label: '%', num: true },
      { label: 'Share of white cells' },
    ],
    rows: rows.map((r) =>
      h(
        'tr',
        { 'data-class': r.label },
        h('th', { scope: 'row' }, displayLabel(r.label)),
        h('td', { class: 'num' }, String(r.count)),
        h('td', { class: 'num' }, formatPercent(r.percent / 100)),
        h(
          'td',
          { class: 'differential__bar-cell' },
          h('div', { class: 'probs__track', 'aria-hidden': 'true' }, bar(r.percent / 100)),
        ),
      ),
    ),
    foot: h(
      'tr',
      null,
      h('th', { scope: 'row' }, 'White cells classified'),
      h('td', { class: 'num', 'data-total': String(total) }, String(total)),
      h('td', { class: 'num' }, total > 0 ? formatPercent(1) : '—'),
      h('td', null),
    ),
  });

  const notes: string[] = [`${summary.images} image${summary.images === 1 ? '' : 's'} submitted`];
  if (summary.noCell) notes.push(`${summary.noCell} without a located white cell`);
  if (summary.rejected) notes.push(`${summary.rejected} rejected`);

  // Erythroblasts and platelets, when the model knows them: counted beside the differential, per 100 white cells.
  const others = Object.entries(diff.per100White ?? {});
  const beside =
    others.length > 0
      ? h(
          'p',
          { class: 'differential__others' },
          'Not white cells, counted beside: ',
          others
            .map(
              ([c, per]) =>
                `${displayLabel(c)} ${diff.counts[c] ?? 0} (${per.toFixed(1)} per 100 white cells)`,
            )
            .join(' · '),
        )
      : null;
  const root = h(
    'section',
    { class: 'panel differential', 'aria-labelledby': headingId },
    h('h2', { id: headingId }, 'Differential count'),
    h('p', { class: 'muted' }, `${notes.join(' · ')}. Every located white cell is counted once.`),
    table,
    beside,
  );

  return root;
}
