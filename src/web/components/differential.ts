/** Differential count of a batch: a table (the record) and a bar chart (the overview). */
import { BarController, BarElement, CategoryScale, Chart, LinearScale, Tooltip } from 'chart.js';
import type { Differential } from '../api.js';
import { dataTable, h } from '../dom.js';
import { differentialRows, displayLabel, formatPercent } from '../format.js';

// Register only what the bar chart needs, to keep the bundle small.
Chart.register(BarController, BarElement, CategoryScale, LinearScale, Tooltip);

export interface DifferentialView {
  root: HTMLElement;
  destroy(): void;
}

export function differentialSection(
  diff: Differential,
  classes: string[],
  summary: { images: number; noCell: number; rejected: number },
): DifferentialView {
  const rows = differentialRows(diff.counts, classes);
  const total = rows.reduce((s, r) => s + r.count, 0);
  const headingId = 'differential-heading';

  const table = dataTable({
    className: 'differential__table',
    caption: 'Differential count by class',
    captionHidden: true,
    columns: [{ label: 'Class' }, { label: 'Count', num: true }, { label: '%', num: true }],
    rows: rows.map((r) =>
      h(
        'tr',
        { 'data-class': r.label },
        h('th', { scope: 'row' }, displayLabel(r.label)),
        h('td', { class: 'num' }, String(r.count)),
        h('td', { class: 'num' }, formatPercent(r.percent / 100)),
      ),
    ),
    foot: h(
      'tr',
      null,
      h('th', { scope: 'row' }, 'White cells classified'),
      h('td', { class: 'num', 'data-total': String(total) }, String(total)),
      h('td', { class: 'num' }, total > 0 ? formatPercent(1) : '—'),
    ),
  });

  const canvas = h('canvas', {
    role: 'img',
    'aria-label': `Bar chart of the differential count: ${rows.map((r) => `${displayLabel(r.label)} ${r.count}`).join(', ')}`,
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
    h('div', { class: 'differential__body' }, table, h('div', { class: 'differential__chart' }, canvas)),
    beside,
  );

  const chart = new Chart(canvas, {
    type: 'bar',
    data: {
      labels: rows.map((r) => displayLabel(r.label)),
      datasets: [
        { label: 'Count', data: rows.map((r) => r.count), backgroundColor: '#2b6a94', borderRadius: 2 },
      ],
    },
    options: {
      indexAxis: 'y',
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      plugins: { tooltip: { enabled: true } },
      scales: {
        x: { beginAtZero: true, ticks: { precision: 0, color: '#3d4652' }, grid: { color: '#e3e7ec' } },
        y: { ticks: { color: '#1b1f24', font: { size: 13 } }, grid: { display: false } },
      },
    },
  });
  return { root, destroy: () => chart.destroy() };
}
