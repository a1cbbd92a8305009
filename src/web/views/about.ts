/** About page: the model card as a person reads it — what the model knows, how it was measured, what it flags. */
import { api } from '../api.js';
import type { AppContext, ViewHandle } from '../context.js';
import { dataTable, h, replaceChildren } from '../dom.js';
import { displayLabel, formatDateTime, formatPercent } from '../format.js';
import { REASON_TEXT } from '../components/review.js';
import { announce, errorMessage } from '../status.js';
import { NOT_WHITE_CELLS } from '../../model/differential.js';
import type { ModelCard } from '../../model/types.js';

export function renderAbout(main: HTMLElement, _ctx: AppContext): ViewHandle {
  const body = h(
    'div',
    { class: 'about', 'aria-busy': 'true' },
    h('p', { class: 'muted' }, 'Loading the model card…'),
  );
  replaceChildren(main, h('h1', { id: 'page-heading', tabindex: '-1' }, 'About the model'), body);
  let cancelled = false;
  void api
    .model()
    .then((card) => {
      if (cancelled) return;
      body.removeAttribute('aria-busy');
      replaceChildren(body, aboutSections(card));
    })
    .catch((err: unknown) => {
      if (cancelled) return;
      body.removeAttribute('aria-busy');
      replaceChildren(body, h('p', null, 'The model card could not be loaded.'));
      announce(`The model card could not be loaded: ${errorMessage(err)}`, 'error');
    });
  return { destroy: () => (cancelled = true) };
}

function aboutSections(card: ModelCard): HTMLElement[] {
  const sources = Object.entries(card.training.counts);
  const v = card.validation;
  const f = card.familiarity;
  return [
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'about-identity' },
      h('h2', { id: 'about-identity' }, `${card.name} ${card.version}`),
      h(
        'dl',
        { class: 'about__facts' },
        h('dt', null, 'Created'),
        h('dd', null, formatDateTime(card.createdAt)),
        h('dt', null, 'Network'),
        h('dd', null, card.backbone.name),
        h('dt', null, 'Model file sha256'),
        h('dd', null, h('code', { class: 'about__sha' }, card.modelSha256)),
      ),
    ),
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'about-classes' },
      h('h2', { id: 'about-classes' }, 'What it knows'),
      h(
        'p',
        null,
        `${card.classes.length} classes: `,
        card.classes.map((c) => displayLabel(c)).join(', '),
        '. ',
        card.classes.some((c) => NOT_WHITE_CELLS.includes(c))
          ? 'Erythroblasts and platelets are not white cells: the differential counts them beside the white cells, per 100 white cells.'
          : '',
      ),
      dataTable({
        className: 'about__counts',
        caption: 'Training images per source and class',
        columns: [{ label: 'Source' }, ...card.classes.map((c) => ({ label: displayLabel(c), num: true }))],
        rows: sources.map(([s, counts]) =>
          h(
            'tr',
            null,
            h('th', { scope: 'row' }, s),
            card.classes.map((c) => h('td', { class: 'num' }, String(counts[c] ?? 0))),
          ),
        ),
      }),
    ),
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'about-validation' },
      h('h2', { id: 'about-validation' }, 'How it was measured'),
      h(
        'p',
        null,
        `On ${v.n} validation images held out from training (grouped, so copies of one photo never straddle the split): `,
        `accuracy ${formatPercent(v.accuracy)}, macro-F1 ${formatPercent(v.macroF1)}, calibration error ${formatPercent(v.ece)}.`,
      ),
      dataTable({
        className: 'about__sources',
        caption: 'Validation accuracy per source',
        columns: [{ label: 'Source' }, { label: 'Images', num: true }, { label: 'Accuracy', num: true }],
        rows: Object.entries(v.perSource).map(([s, x]) =>
          h(
            'tr',
            null,
            h('th', { scope: 'row' }, s),
            h('td', { class: 'num' }, String(x.n)),
            h('td', { class: 'num' }, formatPercent(x.accuracy)),
          ),
        ),
      }),
    ),
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'about-flags' },
      h('h2', { id: 'about-flags' }, 'What it flags for review'),
      h(
        'ul',
        null,
        h(
          'li',
          null,
          `${REASON_TEXT.low_confidence}: the top probability is below ${formatPercent(card.reviewThreshold)}`,
        ),
        f
          ? [
              h(
                'li',
                null,
                `${REASON_TEXT.unfamiliar_cell}: beyond the ${formatPercent(f.cell.quantile)} point of validation cells' distance to their class` +
                  (f.disagreement
                    ? `, or where three views of the cell (early, middle and late features) disagree on its class beyond the ${formatPercent(f.disagreement.quantile)} point of its lab's validation cells`
                    : '') +
                  (f.neighbours
                    ? `, or where it lies further from the model's ${f.neighbours.rows} stored training cells (its ${f.neighbours.k}th nearest) than ${formatPercent(f.neighbours.quantile)} of its lab's validation cells do`
                    : ''),
              ),
              h(
                'li',
                null,
                `${REASON_TEXT.unfamiliar_image}: beyond the ${formatPercent(f.image.quantile)} point of validation images' distance to the training labs (${f.image.components.join(', ')})`,
              ),
            ]
          : h(
              'li',
              null,
              'This model has no familiarity checks: cells and images unlike its training data are not flagged.',
            ),
        h(
          'li',
          null,
          `${REASON_TEXT.damaged_image}: the decoder reported damage, or much of the image is blank or transparent`,
        ),
        h('li', null, `${REASON_TEXT.no_cell}: nothing is guessed`),
      ),
      f?.validation
        ? h(
            'p',
            null,
            `The familiarity checks flag ${formatPercent(f.validation.reviewRate)} of the ${f.validation.n} validation images of the training labs.`,
          )
        : null,
    ),
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'about-use' },
      h('h2', { id: 'about-use' }, 'Intended use, limits and licence'),
      h('p', null, card.intendedUse),
      h(
        'p',
        null,
        'It has learned from two labs only. On images from another lab (other stain, scanner or camera) it is less accurate; its answers there are flagged as unlike its training labs until it is adapted to that lab.',
      ),
      h('p', null, card.license),
      h('p', { class: 'muted' }, card.backbone.attribution),
      h('p', null, h('a', { href: '/api/v1/model' }, 'The full model card (JSON)')),
    ),
  ];
}
