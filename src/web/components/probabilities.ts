/** Class probabilities as a table with bars: the numbers are real text, the bars are decoration. */
import { h } from '../dom.js';
import { displayLabel, formatPercent, orderedProbabilities } from '../format.js';

/** A bar of width p (0..1) in its track, shared by the probability and differential tables. */
export function bar(p: number): HTMLElement {
  const el = h('div', { class: 'probs__bar' });
  // CSSOM, not a style attribute: the server's CSP (style-src 'self') blocks inline style attributes.
  el.style.width = `${Math.max(0, Math.min(1, p)) * 100}%`;
  return el;
}

export function probabilityTable(
  probabilities: Record<string, number>,
  classes: string[],
  predicted: string | null,
  caption = 'Class probabilities',
): HTMLTableElement {
  const rows = orderedProbabilities(probabilities, classes);
  return h(
    'table',
    { class: 'probs' },
    h('caption', null, caption),
    h(
      'thead',
      { class: 'visually-hidden' },
      h(
        'tr',
        null,
        h('th', { scope: 'col' }, 'Class'),
        h('th', { scope: 'col' }, 'Probability'),
        h('th', { scope: 'col' }, 'Value'),
      ),
    ),
    h(
      'tbody',
      null,
      rows.map(({ label, p }) =>
        h(
          'tr',
          { class: label === predicted ? 'probs__row--top' : null, 'data-class': label },
          h('th', { scope: 'row' }, displayLabel(label)),
          h(
            'td',
            { class: 'probs__bar-cell' },
            h('div', { class: 'probs__track', 'aria-hidden': 'true' }, bar(p)),
          ),
          h('td', { class: 'num probs__value' }, formatPercent(p)),
        ),
      ),
    ),
  );
}
